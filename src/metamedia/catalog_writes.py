"""Single-item writes (create, update, delete) on the engine, shared by HTTP, MCP and Python.

The slow part of a write is embedding its text (~5-20 ms). It happens *before* the engine's write
lock is taken; under the lock the item is merged again from the store (another writer may have
changed it meanwhile), committed, and indexed — from the embedding just made, so the lock is held
for the commits only. The store of record commits before we answer.

Group commit: writes that arrive while another group holds the lock wait in a queue, and whoever
takes the lock next commits every queued write together — one transaction for their embeddings,
one for the items, one vector-store upsert and one generation bump, however many writes the group
holds. Under a write-heavy load a write waits for at most about one group instead of queueing
behind every write ahead of it, one set of fsyncs each. A write that fails (unknown item, a
taken external id) fails alone; the others in its group are committed.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .embed.hybrid import item_text, text_hash
from .errors import Conflict, InvalidInput, MetamediaError
from .indexing import MediaIndexer
from .ingest.common import RowError
from .ingest.jsonl import record_from_json
from .ingest.merge import merge_sources, record_data
from .models import MediaItem
from .ports import CatalogStore
from .store.base import ItemWrite, SourceRow

MAX_GROUP = 64  # writes committed together at most
API_SOURCE = ("jsonl", "api")  # (source, origin) of item rows written through the API: top priority
EXTERNAL_KEYS = ("tmdb_id", "imdb_id", "movielens_id")


def api_row(fields: dict[str, Any]) -> SourceRow:
    """A catalog record given as JSON fields (docs/catalog-jsonl.md), as the API's source row."""
    try:
        record = record_from_json(fields)
    except RowError as exc:
        raise InvalidInput(str(exc)) from exc
    return SourceRow(API_SOURCE[0], API_SOURCE[1], record_data(record))


class _Write:
    """One queued put: what to write, then its outcome."""

    def __init__(self, row: SourceRow, item_id: int | None, vectors: dict[str, np.ndarray]) -> None:
        self.row = row
        self.item_id = item_id
        self.vectors = vectors  # text embeddings the content-hash cache lacked, to store with the group
        self.done = threading.Event()
        self.stored_id = 0
        self.error: BaseException | None = None

    def finish(self, *, stored_id: int = 0, error: BaseException | None = None) -> None:
        self.stored_id, self.error = stored_id, error
        self.done.set()


class CatalogWrites:
    """Create, update and delete single items: the store of record first, then the media index."""

    def __init__(self, store: CatalogStore, indexer: MediaIndexer, write_lock: threading.RLock) -> None:
        self.store = store
        self.indexer = indexer
        self.write_lock = write_lock
        self._queue: list[_Write] = []
        self._queue_lock = threading.Lock()
        self.groups = 0  # groups committed (a group holds one or more writes)

    def _merged(self, row: SourceRow, item_id: int | None) -> tuple[dict[str, Any], MediaItem]:
        rows = [row]
        if item_id is not None:
            self.store.get_item(item_id)  # ItemNotFound (404) before anything is written
            rows += [
                r for r in self.store.load_sources([item_id])[item_id] if (r.source, r.origin) != API_SOURCE
            ]
        merged = merge_sources(rows)
        if merged is None:
            raise InvalidInput("an item needs a title")
        fields = {k: v for k, v in merged.items() if k in MediaItem.__dataclass_fields__ and k != "id"}
        item = MediaItem(id=item_id or 0, **fields)
        for name in MediaItem.__dataclass_fields__:  # absent = cleared: the row is rewritten whole
            if name not in ("id", "created_at", "updated_at"):
                merged.setdefault(name, getattr(item, name))
        merged["content_hash"] = text_hash(self.indexer.embedder.name, item_text(item))
        return merged, item

    def _check_keys_free(self, data: dict[str, Any], item_id: int | None) -> None:
        for key in EXTERNAL_KEYS:
            value = data.get(key)
            if value is None:
                continue
            owner = self.store.find_ids(key, [value]).get(value)
            if owner is not None and owner != item_id:
                raise Conflict(
                    f"{key} {value!r} already belongs to item {owner}", {"item_id": owner, key: value}
                )

    def put_item(self, row: SourceRow, item_id: int | None = None) -> MediaItem:
        """Create (item_id None) or update an item from one API source row; returns the stored item."""
        self._check_keys_free(row.data, item_id)
        _, draft = self._merged(row, item_id)
        job = _Write(row, item_id, self.indexer.new_text_vectors([draft]))  # embedded outside the lock
        with self._queue_lock:
            self._queue.append(job)
        with self.write_lock:
            while not job.done.is_set():
                self._commit_queued()
        if job.error is not None:
            raise job.error
        return self.store.get_item(job.stored_id)

    def _commit_queued(self) -> None:
        """Commit the queued writes as one group (caller holds the write lock). A second write to an
        item already in the group waits for the next group, so each group touches an item once."""
        with self._queue_lock:
            group: list[_Write] = []
            later: list[_Write] = []
            items: set[int] = set()
            for job in self._queue:
                if job.item_id is not None and job.item_id in items or len(group) >= MAX_GROUP:
                    later.append(job)
                    continue
                group.append(job)
                if job.item_id is not None:
                    items.add(job.item_id)
            self._queue[:] = later
        self.groups += 1
        try:
            self._commit_group(group)
        except BaseException as exc:  # the group's commit failed: every write in it fails with it
            for job in group:
                if not job.done.is_set():
                    job.finish(error=exc)
            if not isinstance(exc, Exception):
                raise

    def _commit_group(self, group: list[_Write]) -> None:
        ready: list[tuple[_Write, ItemWrite]] = []
        claimed: set[tuple[str, Any]] = set()  # external ids given by earlier writes of this group
        for job in group:
            try:
                self._check_keys_free(job.row.data, job.item_id)
                keys = {
                    (key, job.row.data[key]) for key in EXTERNAL_KEYS if job.row.data.get(key) is not None
                }
                for key, value in keys & claimed:  # as if the earlier write had committed first
                    raise Conflict(
                        f"{key} {value!r} is given to another item by a concurrent write", {key: value}
                    )
                merged, _item = self._merged(job.row, job.item_id)
                claimed |= keys
            except MetamediaError as exc:
                job.finish(error=exc)
                continue
            ready.append((job, ItemWrite(job.item_id, merged, [job.row])))
        if not ready:
            return
        vectors: dict[str, np.ndarray] = {}
        for job, _write in ready:
            vectors.update(job.vectors)
        self.store.put_embeddings(self.indexer.embedder.name, vectors)
        ids: list[int | None]
        try:
            ids = list(self.store.write_items([write for _, write in ready]))
        except Exception:
            if len(ready) == 1:
                raise
            ids = self._one_by_one(ready)  # find the write the transaction failed on; commit the rest
        done = [(job, stored) for (job, _), stored in zip(ready, ids, strict=True) if stored is not None]
        self.indexer.index_items([stored for _, stored in done])
        for job, stored in done:
            job.finish(stored_id=stored)

    def _one_by_one(self, ready: list[tuple[_Write, ItemWrite]]) -> list[int | None]:
        ids: list[int | None] = []
        for job, write in ready:
            try:
                [stored] = self.store.write_items([write])
            except Exception as exc:
                job.finish(error=exc)
                ids.append(None)
                continue
            ids.append(stored)
        return ids

    def delete_item(self, item_id: int) -> None:
        """Delete an item from the store of record, then from the index. ItemNotFound if absent."""
        with self.write_lock:
            self.store.delete_item(item_id)
            self.indexer.index_items([item_id])
