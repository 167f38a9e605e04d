"""Deploy, scale and re-shard metamedia on Ray Serve (the control plane; runs in a Ray driver).

Applications on the Serve cluster:
- `metamedia`: the HTTP ingress (`deployments.Ingress`) and the query embedder (`QueryEmbedder`);
- one application per index shard and layout, `metamedia-shard-v<version>-<i>-of-<S>`, holding
  the deployment `shard` with R replicas.

The current layout (version, S, R) is a row of the store of record (`ray.layout`); the ingress
reads it for every search, so switching to a new layout is one committed write: every search
that starts after it uses the new shards, and each search uses one layout from start to end.

- `scale(R)`: the same shard deployments with another `num_replicas`; Serve adds or stops replicas,
  and a new replica takes traffic only after loading its shard and applying the change log.
- `reshard(S')`: build the shards of layout version+1 beside the old ones, wait until every
  replica of every new shard runs (each caught up with the log before it reported ready),
  switch the layout row, wait `drain_s` for searches still on the old layout, delete the old shards.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ray import serve
from ray.exceptions import RayActorError

from ..errors import BackendUnavailable, InvalidInput
from ..settings import Settings
from ..store.factory import open_store
from .deployments import IndexShard, Ingress, QueryEmbedder
from .ingress import SHARD_DEPLOYMENT
from .media import LAYOUT_KEY
from .sharding import Layout

log = logging.getLogger("metamedia.distributed.control")
INGRESS_APP = "metamedia"
MEDIA_COLLECTION = "media"


@dataclass
class Placement:
    """Where replicas may run: Ray actor options per role (custom resources pin them to nodes)."""

    shard_actor_options: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 0})
    max_shard_replicas_per_node: int | None = None
    ingress_actor_options: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 0})
    embedder_actor_options: dict[str, Any] = field(default_factory=lambda: {"num_cpus": 0})


@dataclass
class RayServing:
    """metamedia's applications on one Ray cluster, over one PostgreSQL store of record."""

    settings: Settings
    placement: Placement = field(default_factory=Placement)
    ingress_replicas: int = 1
    embedder_replicas: int = 1
    ef_construction: int | None = None  # shard graphs; None = the collection's own
    shard_wait_s: float = 10.0
    timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.settings.resolved_vector_backend != "pgvector":
            raise InvalidInput("serving on Ray needs a PostgreSQL database_url (the shared store of record)")

    # ----- the layout row ------------------------------------------------------------------------
    def current_layout(self) -> Layout | None:
        store = open_store(self.settings.resolved_database_url)
        try:
            raw = store.get_meta(LAYOUT_KEY)
        finally:
            store.close()
        return Layout.from_json(raw) if raw else None

    def _switch(self, layout: Layout) -> None:
        store = open_store(self.settings.resolved_database_url)
        try:
            store.set_meta(LAYOUT_KEY, layout.to_json())
        finally:
            store.close()
        log.info(
            "layout switched to v%d: %d shards x %d replicas", layout.version, layout.shards, layout.replicas
        )

    # ----- deployments ----------------------------------------------------------------------------
    def _deploy_shards(self, layout: Layout) -> None:
        options: dict[str, Any] = {
            "name": SHARD_DEPLOYMENT,
            "num_replicas": layout.replicas,
            "ray_actor_options": dict(self.placement.shard_actor_options),
            "health_check_period_s": 2,
            "graceful_shutdown_timeout_s": 5,
        }
        if self.placement.max_shard_replicas_per_node:
            options["max_replicas_per_node"] = self.placement.max_shard_replicas_per_node
        for shard, app in enumerate(layout.app_names):
            bound = serve.deployment(**options)(IndexShard).bind(
                self.settings.resolved_database_url,
                MEDIA_COLLECTION,
                shard,
                layout.shards,
                self.ef_construction,
            )
            serve._run(bound, _blocking=False, name=app, route_prefix=None)
        self.wait_running(layout.app_names, {app: layout.replicas for app in layout.app_names})

    def deploy(self, shards: int, replicas: int) -> Layout:
        """Shards (a new layout version), then the ingress and embedder; returns the layout."""
        current = self.current_layout()
        layout = Layout((current.version + 1) if current else 1, shards, replicas)
        self._deploy_shards(layout)
        self._switch(layout)
        embedder = serve.deployment(
            num_replicas=self.embedder_replicas,
            ray_actor_options=dict(self.placement.embedder_actor_options),
        )(QueryEmbedder).bind(self.settings.model_path or None)
        ingress = serve.deployment(
            name="ingress",
            num_replicas=self.ingress_replicas,
            ray_actor_options=dict(self.placement.ingress_actor_options),
        )(Ingress).bind(self.settings, embedder, self.shard_wait_s)
        serve._run(ingress, _blocking=False, name=INGRESS_APP, route_prefix="/")
        self.wait_running([INGRESS_APP])
        if current and current.version != layout.version:
            self._delete_layout(current)
        return layout

    def scale(self, replicas: int) -> Layout:
        """Change R of the current layout while it serves (same deployments, other num_replicas)."""
        layout = self._require_layout()
        scaled = Layout(layout.version, layout.shards, replicas)
        self._deploy_shards(scaled)
        self._switch(scaled)
        return scaled

    def reshard(self, shards: int, *, replicas: int | None = None, drain_s: float = 2.0) -> Layout:
        """Build S' shards beside the old layout, switch when all run, then delete the old one."""
        old = self._require_layout()
        new = Layout(old.version + 1, shards, replicas or old.replicas)
        self._deploy_shards(new)
        self._switch(new)
        time.sleep(drain_s)  # searches that read the old layout just before the switch finish on it
        self._delete_layout(old)
        return new

    def _delete_layout(self, layout: Layout) -> None:
        live = set(serve.status().applications)
        for app in layout.app_names:
            if app in live:
                serve.delete(app, _blocking=True)

    def _require_layout(self) -> Layout:
        layout = self.current_layout()
        if layout is None:
            raise BackendUnavailable("no layout is deployed: run metamedia serve --ray first")
        return layout

    # ----- status ----------------------------------------------------------------------------------
    def wait_running(self, apps: list[str], replicas: dict[str, int] | None = None) -> None:
        """Block until each application runs with every replica RUNNING (BackendUnavailable after
        `timeout_s`, with the status Serve reports; immediately if a deployment failed)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            pending = [app for app in apps if not self._running(app, (replicas or {}).get(app))]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"Serve applications not running after {self.timeout_s:g} s: {pending}"
                )
            time.sleep(0.25)

    def _running(self, app: str, replicas: int | None) -> bool:
        status = serve.status().applications.get(app)
        if status is None:
            return False
        if status.status == "DEPLOY_FAILED":
            reasons = "; ".join(f"{name}: {d.message}" for name, d in status.deployments.items() if d.message)
            raise BackendUnavailable(f"Serve application {app} failed to deploy: {status.message} {reasons}")
        if status.status != "RUNNING":
            return False
        for deployment in status.deployments.values():
            if deployment.status != "HEALTHY":
                return False
            running = sum(n for state, n in deployment.replica_states.items() if state == "RUNNING")
            if replicas is not None and running != replicas:
                return False
            if sum(deployment.replica_states.values()) != running:  # old replicas still stopping
                return False
        return True

    def shard_status(self) -> list[dict[str, Any]]:
        """One shard replica's status per shard of the current layout (applied change, points)."""
        layout = self._require_layout()
        return [self.call_shard(app, "status") for app in layout.app_names]

    def call_shard(self, app: str, method: str, attempts: int = 5) -> Any:
        """Call a method on one replica of a shard; a replica whose node is gone is replaced by
        another on the next attempt (Serve learns of dead replicas a moment after they die)."""
        handle = serve.get_deployment_handle(SHARD_DEPLOYMENT, app_name=app)
        for attempt in range(1, attempts + 1):
            try:
                return getattr(handle, method).remote().result(timeout_s=60)
            except RayActorError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
