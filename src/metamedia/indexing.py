"""The media index: hybrid vectors of catalog items, kept in line with the store of record.

`MediaIndexer` embeds item texts (through the content-hash cache in the store), builds each item's
hybrid vector and upserts it with its filterable payload into the media collection; it can also
compare the index with the store (missing, extra and stale items). It calls `on_change` after every
index write, which the engine uses to move the search cache's generation on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .embed.hybrid import HybridWeights, item_text, item_vector, text_hash
from .ingest.run import Progress
from .models import MediaItem
from .ports import CatalogStore, Embedder, VectorCollection

INDEX_BATCH = 64  # one forward pass of the embedder: a stop waits at most this many texts


# Scalar payload fields that search filters on: on PostgreSQL they get typed, btree-indexed columns.
MEDIA_FILTER_FIELDS = {
    "year": "number",
    "rating": "number",
    "votes": "number",
    "runtime": "number",
    "type": "string",
    "language": "string",
}


def item_payload(item: MediaItem, vhash: str) -> dict[str, Any]:
    """The filterable fields of an item, stored beside its vector."""
    return {
        "title": item.title,
        "type": item.media_type,
        "year": item.year,
        "release_date": item.release_date,
        "genres": list(item.genres),
        "rating": item.vote_average,
        "votes": item.vote_count,
        "runtime": item.runtime,
        "popularity": item.popularity,
        "language": item.language,
        "vhash": vhash,
    }


def vector_hash(item: MediaItem, weights: HybridWeights) -> str:
    """Changes whenever anything that goes into the item's hybrid vector changes."""
    parts = [
        item_text(item),
        item.media_type,
        json.dumps(item.genres),
        json.dumps(item.keywords),
        str(item.year),
        str(item.runtime),
        str(item.vote_average),
        str(item.vote_count),
        str(item.popularity),
        repr(weights),
    ]
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:24]


class MediaIndexer:
    """Writes hybrid vectors of catalog items into the media collection."""

    def __init__(
        self,
        store: CatalogStore,
        media: VectorCollection,
        embedder: Embedder,
        weights: HybridWeights,
        on_change: Callable[[], None],
    ) -> None:
        self.store = store
        self.media = media
        self.embedder = embedder
        self.weights = weights
        self.on_change = on_change

    def text_vectors(self, items: Sequence[MediaItem], *, progress: Progress | None = None) -> np.ndarray:
        """Text embeddings of items, from the content-hash cache where possible."""
        texts = [item_text(it) for it in items]
        hashes = [text_hash(self.embedder.name, t) for t in texts]
        cached = self.store.get_embeddings(hashes)
        missing = [i for i, h in enumerate(hashes) if h not in cached]
        for start in range(0, len(missing), INDEX_BATCH):
            chunk = missing[start : start + INDEX_BATCH]
            vecs = self.embedder.encode([texts[i] for i in chunk])
            fresh = {hashes[i]: v for i, v in zip(chunk, vecs, strict=True)}
            self.store.put_embeddings(self.embedder.name, fresh)  # kept if the load stops before the end
            cached.update(fresh)
            if progress:
                progress("embed", min(start + INDEX_BATCH, len(missing)), len(missing))
        return np.stack([cached[h] for h in hashes]) if hashes else np.zeros((0, 384), np.float32)

    def new_text_vectors(self, items: Sequence[MediaItem]) -> dict[str, np.ndarray]:
        """Embeddings of the items' texts that the content-hash cache lacks, by content hash, computed
        but not stored: the caller stores them (`CatalogStore.put_embeddings`) with its own write."""
        texts = {text_hash(self.embedder.name, t): t for t in (item_text(it) for it in items)}
        cached = self.store.get_embeddings(list(texts))
        missing = [h for h in texts if h not in cached]
        if not missing:
            return {}
        return dict(zip(missing, self.embedder.encode([texts[h] for h in missing]), strict=True))

    def index_items(self, item_ids: Sequence[int], *, progress: Progress | None = None) -> int:
        """(Re)compute hybrid vectors of the given items and upsert them into the media collection."""
        ids = sorted(set(int(i) for i in item_ids))
        done = 0
        for start in range(0, len(ids), 2048):
            chunk = ids[start : start + 2048]
            items = self.store.get_items(chunk)
            present = [items[i] for i in chunk if i in items]
            gone = [i for i in chunk if i not in items]
            if gone:
                self.media.delete(gone)
                self.on_change()
            if not present:
                continue
            chunk_progress = _within(progress, start, len(chunk), len(ids)) if progress else None
            text = self.text_vectors(present, progress=chunk_progress)
            vecs = np.stack([item_vector(it, t, self.weights) for it, t in zip(present, text, strict=True)])
            payloads = [item_payload(it, vector_hash(it, self.weights)) for it in present]
            self.media.upsert([it.id for it in present], vecs, payloads)
            self.on_change()
            done += len(present)
            if progress:
                progress("index", min(start + len(chunk), len(ids)), len(ids))
        return done

    def check_index(self) -> dict[str, Any]:
        """Compare the media index with the store of record: missing, extra and stale items."""
        stored = {it.id: vector_hash(it, self.weights) for it in self.store.iter_items()}
        indexed_ids = set(int(i) for i in self.media.ids())
        extra = sorted(indexed_ids - set(stored))
        missing = sorted(set(stored) - indexed_ids)
        indexed_hashes = self.media.payload_field("vhash")
        stale = sorted(i for i in indexed_ids & set(stored) if indexed_hashes.get(i) != stored[i])
        return {
            "ok": not (extra or missing or stale),
            "items": len(stored),
            "indexed": len(indexed_ids),
            "missing": missing,
            "extra": extra,
            "stale": stale,
        }


def _within(progress: Progress, offset: int, size: int, whole: int) -> Progress:
    """Progress of one chunk (done/total of its own work) as items of the whole call."""

    def report(stage: str, done: int, total: int) -> None:
        progress(stage, offset + round(size * done / max(total, 1)), whole)

    return report
