"""A real local multi-node Ray cluster for the Ray tests (`ray.cluster_utils.Cluster`).

Head node plus two worker nodes, each with one CPU (the machine has two cores shared by many
processes) and a custom resource that pins replicas: `mm_head` on the head (ingress, embedder,
Serve proxy), `mm_shards` on the workers (index shard replicas, at most one of a shard per node),
so a test can remove the node that holds one replica of every shard. Serve's HTTP proxy runs on
the head only, on a free port.

Import in a test module: `from tests.rayfixtures import RayTestCluster, ray_cluster  # noqa: F401`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

SHARD_RESOURCE = "mm_shards"
HEAD_RESOURCE = "mm_head"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RayTestCluster:
    """The running cluster, its worker nodes by name, and Serve's HTTP address."""

    cluster: Any
    http_port: int
    workers: dict[str, Any] = field(default_factory=dict)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def add_shard_node(self, name: str) -> Any:
        """A worker node that may hold index shard replicas (returns its node handle)."""
        node = self.cluster.add_node(num_cpus=1, resources={SHARD_RESOURCE: 1})
        self.cluster.wait_for_nodes()
        self.workers[name] = node
        return node

    def remove(self, name: str) -> None:
        """Take a worker node away abruptly (its processes are killed), as a lost machine."""
        self.cluster.remove_node(self.workers.pop(name), allow_graceful=False)

    def node_id(self, name: str) -> str:
        return str(self.workers[name].node_id)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayTestCluster]:
    """Head + 2 shard worker nodes, connected, with Serve started; torn down after the module."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # deferred: Ray is only imported by the Ray tests
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {HEAD_RESOURCE: 100}, "include_dashboard": False},
    )
    handle = RayTestCluster(cluster, _free_port())
    try:
        handle.add_shard_node("a")
        handle.add_shard_node("b")
        ray.init(address=cluster.address, log_to_driver=False)
        serve.start(
            http_options={"host": "127.0.0.1", "port": handle.http_port, "location": "HeadOnly"},
        )
        yield handle
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            cluster.shutdown()
