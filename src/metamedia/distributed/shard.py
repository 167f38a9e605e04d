"""One index shard replica: a faiss copy of one shard of a pgvector collection, kept current.

`ShardIndex` is plain Python (the Serve deployment in `deployments.py` wraps it). At start it
loads its shard of the collection from PostgreSQL and the change-log number of that snapshot in
one REPEATABLE READ transaction (the rows and the number agree), then applies every later change
before it answers; a background thread keeps pulling changes in sequence order. A change names
ids; the replica fetches their current rows in the same snapshot as the change rows, so applying
a batch is idempotent and ends exactly at the state of its last change number.

Searches run on the embedded collection (`metamedia.vectors`: HNSW plus the filter planner that
searches the allowed subset exactly when a filter is selective), so filters behave as in the
single-process engine. Only numpy, faiss, SQLAlchemy and psycopg are loaded here, never torch.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from ..errors import BackendUnavailable
from ..store.postgres import make_pg_engine
from ..store.sql import make_engine
from ..vectors import VectorDB
from ..vectors.base import Hit
from ..vectors.collection import Collection
from ..vectors_pg.changes import latest_seq, read_changes
from ..vectors_pg.db import PgVectorDB
from .sharding import shard_mask

log = logging.getLogger("metamedia.distributed.shard")
LOAD_BATCH = 2000
CHANGE_BATCH = 500


class ShardBehind(BackendUnavailable):
    """A shard replica has not applied a change number within the time allowed (HTTP 503)."""


class ShardIndex:
    """Shard `shard` of `shards` of one pgvector collection, in memory, following the change log."""

    def __init__(
        self,
        database_url: str,
        collection: str,
        shard: int,
        shards: int,
        *,
        poll_interval_s: float = 0.1,
        ef_construction: int | None = None,
        work_dir: Path | None = None,
    ) -> None:
        self.collection_name = collection
        self.shard = shard
        self.shards = shards
        self.poll_interval_s = poll_interval_s
        self.db: Engine = make_pg_engine(database_url, pool_size=2, max_overflow=2)
        source = PgVectorDB(self.db).get_collection(collection)
        self.table = source.table
        self.metric = source.config.metric
        self.dir = Path(tempfile.mkdtemp(prefix=f"metamedia-shard{shard}-", dir=work_dir))
        self._local_db = VectorDB(make_engine(f"sqlite:///{self.dir / 'shard.db'}"), self.dir)
        config = source.config
        if ef_construction is not None:  # a faster build for replicas that start often (tests, bench)
            config = dataclasses.replace(config, ef_construction=ef_construction)
        self.local: Collection = self._local_db.create_collection(config)
        self._ids: set[int] = set()
        self.applied_seq = 0
        self._apply_lock = threading.Lock()
        self._applied = threading.Condition()
        self.last_poll = time.monotonic()
        self.started = time.monotonic()
        self._load_snapshot()
        self.catch_up()
        self.load_seconds = time.monotonic() - self.started
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=f"shard{shard}-poller", daemon=True)
        self._poller.start()

    # ----- loading and following ----------------------------------------------------------------
    def _snapshot_conn(self) -> Connection:
        return self.db.connect().execution_options(isolation_level="REPEATABLE READ")

    def _load_snapshot(self) -> None:
        with self._snapshot_conn() as conn, conn.begin():
            seq = latest_seq(conn, self.collection_name)
            result = conn.execution_options(yield_per=LOAD_BATCH).execute(
                select(self.table.c.id, self.table.c.embedding, self.table.c.payload)
            )
            for rows in result.partitions():
                self._apply_rows(rows)
        self.applied_seq = seq
        log.info("shard %d/%d loaded %d points at change %d", self.shard, self.shards, len(self._ids), seq)

    def _apply_rows(self, rows: Any) -> None:
        ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
        mine = shard_mask(ids, self.shard, self.shards)
        if not mine.any():
            return
        picked = [r for r, keep in zip(rows, mine, strict=True) if keep]
        vectors = np.array([np.asarray(r[1], dtype=np.float32) for r in picked], dtype=np.float32)
        self.local.upsert([int(r[0]) for r in picked], vectors, [dict(r[2]) for r in picked])
        self._ids.update(int(r[0]) for r in picked)

    def catch_up(self) -> int:
        """Apply every committed change after `applied_seq`; returns the number now applied."""
        with self._apply_lock:
            while True:
                with self._snapshot_conn() as conn, conn.begin():
                    changes = read_changes(conn, self.collection_name, self.applied_seq, CHANGE_BATCH)
                    if not changes:
                        break
                    touched = np.array(sorted({i for c in changes for i in c.ids}), dtype=np.int64)
                    touched = touched[shard_mask(touched, self.shard, self.shards)]
                    rows: Sequence[Any] = []
                    if len(touched):
                        rows = conn.execute(
                            select(self.table.c.id, self.table.c.embedding, self.table.c.payload).where(
                                self.table.c.id.in_(touched.tolist())
                            )
                        ).all()
                if len(touched):
                    present = {int(r[0]) for r in rows}
                    gone = [i for i in touched.tolist() if i not in present and i in self._ids]
                    if rows:
                        self._apply_rows(rows)
                    if gone:
                        self.local.delete(gone)
                        self._ids.difference_update(gone)
                with self._applied:
                    self.applied_seq = changes[-1].seq
                    self._applied.notify_all()
                if len(changes) < CHANGE_BATCH:
                    break
            self.last_poll = time.monotonic()
            return self.applied_seq

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.catch_up()
            except Exception:  # the store is unreachable for a moment: keep serving, try again
                log.exception("shard %d/%d: catching up failed", self.shard, self.shards)

    def wait_for(self, seq: int, timeout_s: float) -> int:
        """Block until change `seq` is applied (ShardBehind after `timeout_s`); returns applied_seq."""
        if self.applied_seq >= seq:
            return self.applied_seq
        deadline = time.monotonic() + timeout_s
        self.catch_up()  # the write may have committed a moment ago: look now, not at the next poll
        with self._applied:
            while self.applied_seq < seq:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ShardBehind(
                        f"shard {self.shard}/{self.shards} has applied change {self.applied_seq}, "
                        f"not {seq}, after {timeout_s:g} s",
                        {"shard": self.shard, "applied_seq": self.applied_seq, "min_seq": seq},
                    )
                self._applied.wait(min(left, self.poll_interval_s))
        return self.applied_seq

    # ----- reads ------------------------------------------------------------------------------------
    def search(
        self,
        query: np.ndarray,
        k: int,
        *,
        ef: int | None = None,
        filter: dict[str, Any] | None = None,
        threshold: float | None = None,
    ) -> list[Hit]:
        k = min(k, max(len(self._ids), 1))
        return self.local.search(query, k, ef=ef, filter=filter, threshold=threshold)

    def ids(self) -> list[int]:
        with self._apply_lock:  # the follower changes the set while it applies a batch
            return sorted(self._ids)

    def status(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "shards": self.shards,
            "applied_seq": self.applied_seq,
            "points": len(self._ids),
            "load_seconds": round(self.load_seconds, 3),
            "last_poll_age_s": round(time.monotonic() - self.last_poll, 3),
            "follower_alive": self._poller.is_alive(),
            "torch_loaded": "torch" in sys.modules,  # shards need numpy and faiss only
        }

    def close(self) -> None:
        self._stop.set()
        self._poller.join(timeout=5)
        self._local_db.close(snapshot=False)
        self.db.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)
