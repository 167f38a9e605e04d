"""The Ray Serve deployments: index shards, the query embedder and the HTTP ingress.

This module is imported by every replica, so its top level stays light (numpy, Ray Serve, the
shard index): the ingress imports FastAPI and the engine when it starts, the embedder its model.
Shard replicas therefore never load torch.

- `IndexShard`: one replica of one shard (`shard.ShardIndex`); ready only once it has loaded its
  shard from PostgreSQL and applied the change log (Serve sends no traffic before `__init__`
  returns), then follows the log. `search` waits for a `min_seq` the caller wrote.
- `QueryEmbedder`: all-MiniLM-L6-v2 on ONNX Runtime (texts of writes and queries), own replica count.
- `Ingress`: the same FastAPI app as `metamedia serve`, on an engine whose media collection is
  `media.ShardedMedia` (writes to PostgreSQL, searches scattered to the shards) and whose embedder
  is the `QueryEmbedder` deployment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from .shard import ShardBehind, ShardIndex

log = logging.getLogger("metamedia.distributed")


class IndexShard:
    """A Serve replica holding one shard of the media collection."""

    def __init__(
        self,
        database_url: str,
        collection: str,
        shard: int,
        shards: int,
        ef_construction: int | None = None,
        poll_interval_s: float = 0.1,
    ) -> None:
        self.index = ShardIndex(
            database_url,
            collection,
            shard,
            shards,
            ef_construction=ef_construction,
            poll_interval_s=poll_interval_s,
        )

    async def search(
        self,
        query: np.ndarray,
        k: int,
        ef: int | None = None,
        filter: dict[str, Any] | None = None,
        threshold: float | None = None,
        min_seq: int = 0,
        wait_s: float = 10.0,
    ) -> dict[str, Any]:
        """{"hits": [(id, score)...], "applied_seq"} or {"behind": {...}} when `min_seq` was not
        applied within `wait_s` (the ingress turns that into ShardBehind, HTTP 503)."""
        if min_seq > self.index.applied_seq:
            try:
                await asyncio.to_thread(self.index.wait_for, min_seq, wait_s)
            except ShardBehind as exc:
                return {"behind": exc.detail, "message": exc.message}
        hits = self.index.search(query, k, ef=ef, filter=filter, threshold=threshold)
        return {"hits": [(int(h.id), float(h.score)) for h in hits], "applied_seq": self.index.applied_seq}

    def status(self) -> dict[str, Any]:
        return self.index.status()

    def ids(self) -> list[int]:
        return self.index.ids()

    def check_health(self) -> None:
        if not self.index.status()["follower_alive"]:
            raise RuntimeError(f"shard {self.index.shard}: the change-log follower stopped")

    def __del__(self) -> None:
        index = getattr(self, "index", None)
        if index is not None:
            index.close()


class QueryEmbedder:
    """all-MiniLM-L6-v2 for the ingress: query texts and the texts of written items."""

    def __init__(self, model_path: str | None = None, threads: int = 1) -> None:
        # deferred: the model runtime loads in this replica only
        from ..embed.model import TextEmbedder

        self.embedder = TextEmbedder(model_path or None, query_threads=threads, bulk_backend="onnx")
        self.embedder.encode_query("warm up")
        self.name = self.embedder.name

    async def encode_query(self, text: str) -> np.ndarray:
        return await asyncio.to_thread(self.embedder.encode_query, text)

    async def encode(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.embedder.encode, texts)

    def model_name(self) -> str:
        return self.name


@serve.ingress()
class Ingress:
    """The HTTP API on Ray Serve: `api.app.create_app` over a sharded engine."""

    def __init__(self, settings: Any, embedder: DeploymentHandle, shard_wait_s: float = 10.0) -> None:
        # deferred: FastAPI and the engine load in the ingress replicas only
        from .ingress import open_sharded_engine

        self.settings = settings
        self.engine = open_sharded_engine(settings, embedder, shard_wait_s=shard_wait_s)

    def __serve_build_asgi_app__(self) -> Any:
        # deferred: FastAPI loads in the ingress replicas only
        from .ingress import build_app

        return build_app(self.settings, self.engine)

    def __del__(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None:
            engine.close()
