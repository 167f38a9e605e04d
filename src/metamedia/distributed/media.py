"""The media collection as the ingress sees it: writes to PostgreSQL, searches on the shards.

`ShardedMedia` satisfies the engine's `VectorCollection` port. Writes, point reads and counts go
to the pgvector collection in the store of record (a write is acknowledged once PostgreSQL has
committed it together with its change-log number). A search reads the current layout from the
store, sends the query to one replica of every shard (Serve picks the replica), and merges the
shards' top k + margin by score; filters travel with the query and apply inside each shard.

Read-your-writes: the change number of the last write made while handling a request is put in
`WRITTEN` (the HTTP layer answers it as a header); a search run with `MIN_SEQ` set waits until
each shard replica it asks has applied that number, or fails with ShardBehind after `wait_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any, cast

import numpy as np
from ray.exceptions import RayActorError

from ..errors import BackendUnavailable
from ..vectors.base import Hit, higher_is_better
from ..vectors.config import CollectionConfig
from ..vectors.filters import parse_filter
from ..vectors.validation import check_k, check_vectors
from ..vectors_pg.collection import PgCollection
from .shard import ShardBehind
from .sharding import Layout, merge_hits, shard_k

MIN_SEQ: ContextVar[int] = ContextVar("metamedia_min_seq", default=0)
WRITTEN: ContextVar[list[int] | None] = ContextVar("metamedia_written_seq", default=None)
LAYOUT_KEY = "ray.layout"
REPLICA_ATTEMPTS = 5
log = logging.getLogger("metamedia.distributed.media")


class ShardRouter:
    """Scatter a query to one replica of each shard of the current layout, gather, merge."""

    def __init__(
        self,
        read_layout: Callable[[], Layout | None],
        handle_for: Callable[[str], Any],
        *,
        wait_s: float = 10.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.read_layout = read_layout
        self.handle_for = handle_for
        self.wait_s = wait_s
        self.timeout_s = timeout_s
        self._handles: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _handle(self, app: str) -> Any:
        with self._lock:
            if app not in self._handles:
                self._handles[app] = self.handle_for(app)
            return self._handles[app]

    def layout(self) -> Layout:
        layout = self.read_layout()
        if layout is None:
            raise BackendUnavailable("no index shards are deployed yet (metamedia serve --ray deploys them)")
        return layout

    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        ef: int | None,
        filter: dict[str, Any] | None,
        threshold: float | None,
        min_seq: int,
        higher: bool,
    ) -> list[Hit]:
        """The merged top k. A failure on a layout that was switched meanwhile is retried once on
        the new layout (its shards are complete before the switch)."""
        layout = self.layout()
        try:
            return self._scatter(layout, query, k, ef, filter, threshold, min_seq, higher)
        except ShardBehind:
            raise
        except Exception:
            now = self.layout()
            if now == layout:
                raise
            return self._scatter(now, query, k, ef, filter, threshold, min_seq, higher)

    def _scatter(
        self,
        layout: Layout,
        query: np.ndarray,
        k: int,
        ef: int | None,
        filter: dict[str, Any] | None,
        threshold: float | None,
        min_seq: int,
        higher: bool,
    ) -> list[Hit]:
        args = (query, shard_k(k), ef, filter, threshold, min_seq, self.wait_s)
        calls = [(app, self._handle(app).search.remote(*args)) for app in layout.app_names]
        deadline = time.monotonic() + self.timeout_s + self.wait_s
        answers = []
        for app, call in calls:
            answer = self._answer(app, call, args, deadline)
            if "behind" in answer:
                raise ShardBehind(answer["message"], answer["behind"])
            answers.append([Hit(int(i), float(s)) for i, s in answer["hits"]])
        return merge_hits(answers, k, higher)

    def _answer(self, app: str, call: Any, args: tuple[Any, ...], deadline: float) -> dict[str, Any]:
        """One shard's answer; a replica that died (its node left) is asked again, and Serve
        sends the retry to a live replica of the same shard."""
        for attempt in range(1, REPLICA_ATTEMPTS + 1):
            try:
                return cast(dict[str, Any], call.result(timeout_s=max(0.1, deadline - time.monotonic())))
            except RayActorError:
                if attempt == REPLICA_ATTEMPTS or time.monotonic() > deadline:
                    raise
                log.warning("%s: a replica is gone; asking another (attempt %d)", app, attempt + 1)
                call = self._handle(app).search.remote(*args)
        raise AssertionError("unreachable")  # pragma: no cover


class ShardedMedia:
    """`VectorCollection` over a pgvector collection (writes, reads) and its Ray shards (search)."""

    def __init__(self, source: PgCollection, router: ShardRouter) -> None:
        self.source = source
        self.router = router
        self._write_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def config(self) -> CollectionConfig:
        return self.source.config

    def _record(self, seq: int) -> None:
        written = WRITTEN.get()
        if written is not None and seq:
            written.append(seq)

    def upsert(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        payloads: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        with self._write_lock:  # last_seq belongs to the write this thread just made
            before = self.source.last_seq
            self.source.upsert(ids, vectors, payloads)
            seq = self.source.last_seq
        self._record(seq if seq != before else 0)

    def delete(self, ids: Sequence[int] | np.ndarray) -> int:
        with self._write_lock:
            before = self.source.last_seq
            removed = self.source.delete(ids)
            seq = self.source.last_seq
        self._record(seq if seq != before else 0)
        return removed

    def get(self, point_id: int) -> tuple[np.ndarray, dict[str, Any]]:
        return self.source.get(point_id)

    def get_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.source.get_vectors(ids)

    def payload_field(self, name: str) -> dict[int, Any]:
        return self.source.payload_field(name)

    def count(self) -> int:
        return self.source.count()

    def ids(self) -> np.ndarray:
        return self.source.ids()

    def search(
        self,
        query: np.ndarray,
        k: int = 10,
        *,
        ef: int | None = None,
        filter: dict[str, Any] | None = None,
        threshold: float | None = None,
    ) -> list[Hit]:
        vector = check_vectors(query, self.config, what="query")[0]
        parse_filter(filter)  # InvalidFilter here, before any shard is asked
        return self.router.search(
            vector,
            check_k(k),
            ef=ef,
            filter=filter,
            threshold=threshold,
            min_seq=MIN_SEQ.get(),
            higher=higher_is_better(self.config.metric),
        )

    def explain(self, k: int = 10, *, filter: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"plan": "sharded", "layout": self.router.layout().to_json()}

    def snapshot(self) -> None:
        """Nothing to do: points are durable in PostgreSQL; shards rebuild from it."""
