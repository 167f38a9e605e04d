"""Single-item writes (create, update, delete) on the engine, shared by HTTP, MCP and Python.

The slow part of a write is embedding its text (~10-20 ms). It happens *before* the engine's write
lock is taken, into the content-hash embedding cache; under the lock the item is merged again from
the store (another writer may have changed it meanwhile), committed, and indexed — normally from
the cache, so the lock is held for milliseconds. The store of record commits before we answer.
"""

from __future__ import annotations

import threading
from typing import Any

from .embed.hybrid import item_text, text_hash
from .errors import Conflict, InvalidInput
from .indexing import MediaIndexer
from .ingest.common import RowError
from .ingest.jsonl import record_from_json
from .ingest.merge import merge_sources, record_data
from .models import MediaItem
from .ports import CatalogStore
from .store.base import ItemWrite, SourceRow

API_SOURCE = ("jsonl", "api")  # (source, origin) of item rows written through the API: top priority
EXTERNAL_KEYS = ("tmdb_id", "imdb_id", "movielens_id")


def api_row(fields: dict[str, Any]) -> SourceRow:
    """A catalog record given as JSON fields (docs/catalog-jsonl.md), as the API's source row."""
    try:
        record = record_from_json(fields)
    except RowError as exc:
        raise InvalidInput(str(exc)) from exc
    return SourceRow(API_SOURCE[0], API_SOURCE[1], record_data(record))


class CatalogWrites:
    """Create, update and delete single items: the store of record first, then the media index."""

    def __init__(self, store: CatalogStore, indexer: MediaIndexer, write_lock: threading.RLock) -> None:
        self.store = store
        self.indexer = indexer
        self.write_lock = write_lock

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
        self.indexer.text_vectors([draft])  # embeds outside the lock; cached by content hash
        with self.write_lock:
            self._check_keys_free(row.data, item_id)
            merged, _item = self._merged(row, item_id)
            [stored_id] = self.store.write_items([ItemWrite(item_id, merged, [row])])
            self.indexer.index_items([stored_id])
        return self.store.get_item(stored_id)

    def delete_item(self, item_id: int) -> None:
        """Delete an item from the store of record, then from the index. ItemNotFound if absent."""
        with self.write_lock:
            self.store.delete_item(item_id)
            self.indexer.index_items([item_id])
