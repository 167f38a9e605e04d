"""`metamedia serve --ray` and `metamedia cluster ...`: connect to Ray, deploy, operate.

`serve_on_ray` connects to a running cluster (`ray start --head` prints its address) or starts
a local one, starts Serve's HTTP proxy on the configured host and port, deploys the index shards
and the ingress, and keeps serving until interrupted (then it removes metamedia's applications).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from ..settings import Settings
from .control import RayServing

log = logging.getLogger("metamedia.distributed")


def connect(address: str | None) -> None:
    """Join the Ray cluster at `address` (None: start a local Ray on this machine)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # deferred: Ray starts or joins a cluster only for the Ray commands
    import ray

    if not ray.is_initialized():
        ray.init(address=address, namespace="metamedia", log_to_driver=False)


def serve_on_ray(
    settings: Settings,
    *,
    address: str | None,
    shards: int,
    replicas: int,
    embedders: int = 1,
    ingresses: int = 1,
    stop: threading.Event | None = None,
) -> None:
    """Deploy metamedia on Ray Serve and serve until `stop` is set or the process is interrupted."""
    # deferred: Ray Serve loads only for `serve --ray`
    from ray import serve

    serving = RayServing(settings, ingress_replicas=ingresses, embedder_replicas=embedders)
    connect(address)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    layout = serving.deploy(shards, replicas)
    log.warning(
        "metamedia on Ray Serve at http://%s:%d: %d shards x %d replicas (layout v%d)",
        settings.host, settings.port, layout.shards, layout.replicas, layout.version,
    )  # fmt: skip
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()


def operate(settings: Settings, address: str | None, action: str, value: int | None = None) -> Any:
    """One operation on a running deployment: `status`, `scale` (R) or `reshard` (S)."""
    serving = RayServing(settings)
    connect(address)
    if action == "scale" and value is not None:
        return serving.scale(value).__dict__
    if action == "reshard" and value is not None:
        return serving.reshard(value).__dict__
    layout = serving.current_layout()
    return {"layout": layout.__dict__ if layout else None, "shards": serving.shard_status() if layout else []}
