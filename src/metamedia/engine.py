"""The service object: owns the catalog, the embedder, the vector index and search.

Every interface (Python API, CLI, HTTP, MCP) is a thin adapter over `Engine`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .embed.hybrid import HYBRID_DIM, HybridWeights, item_text, item_vector, text_hash
from .embed.model import TextEmbedder
from .errors import ItemNotFound
from .ingest.run import IngestReport, Progress, ingest_files
from .models import MediaItem
from .search.cache import ResultCache, open_result_cache
from .settings import Settings
from .store.factory import open_store
from .vectors import CollectionConfig, VectorDB

log = logging.getLogger("metamedia.engine")

MEDIA_COLLECTION = "media"
INDEX_BATCH = 256
SEARCH_CACHE_SIZE = 1024


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


class Engine:
    """metamedia's one service object."""

    def __init__(self, settings: Settings | None = None, *, embedder: TextEmbedder | None = None) -> None:
        self.settings = settings or Settings.from_env()
        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = open_store(self.settings.resolved_database_url)
        self.embedder = embedder or TextEmbedder(
            self.settings.model_path or None,
            batch_size=self.settings.embed_batch_size,
            threads=self.settings.torch_threads,
            query_threads=self.settings.query_threads,
            backend=self.settings.embed_backend,
        )
        self.weights = HybridWeights(
            text=self.settings.weight_text,
            genre=self.settings.weight_genre,
            mood=self.settings.weight_mood,
            meta=self.settings.weight_meta,
        )
        self.vectors = VectorDB(self.store.engine, Path(self.settings.data_dir))
        self.vector_backend = self.settings.resolved_vector_backend
        self.media_db: Any = self._open_media_db()
        self.write_lock = threading.RLock()
        self.result_cache: ResultCache = open_result_cache(self.settings.redis_url, SEARCH_CACHE_SIZE)
        self.media = self._open_media_collection()
        self.started_at = time.time()
        from .search.pipeline import SearchPipeline

        self.search_pipeline = SearchPipeline(self)
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._lazy_lock = threading.Lock()
        self._recs: Any = None
        self._memory: Any = None
        self._bandit: Any = None

    # ----- the other layers, opened on first use ----------------------------------------------
    @property
    def recs(self) -> Any:
        """Users, interactions and recommendations (metamedia.recommend.service.RecommendService)."""
        if self._recs is None:
            with self._lazy_lock:
                if self._recs is None:
                    from .recommend.service import RecommendService

                    self._recs = RecommendService(self)
        return self._recs

    @property
    def memory(self) -> Any:
        """Agent memory (metamedia.memory.service.AgentMemory) on the store of record."""
        if self._memory is None:
            with self._lazy_lock:
                if self._memory is None:
                    from .memory.service import AgentMemory

                    self._memory = AgentMemory(self.store.engine, self.embedder)
        return self._memory

    @property
    def bandit(self) -> Any:
        """The algorithm-picking bandit (metamedia.bandit.service.BanditService)."""
        if self._bandit is None:
            with self._lazy_lock:
                if self._bandit is None:
                    from .bandit.service import BanditService

                    self._bandit = BanditService(self.store.engine)
        return self._bandit

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Tell listeners (the HTTP event stream, metrics) that something happened."""
        for listener in list(self.listeners):
            try:
                listener(kind, data)
            except Exception:  # a broken listener must not fail the write that was already committed
                log.exception("event listener failed for %s", kind)

    # ----- lifecycle -------------------------------------------------------------------------
    def _open_media_db(self) -> Any:
        """The vector database holding the media index: the embedded faiss store, or pgvector
        inside the PostgreSQL store of record (same collection API, durable without snapshots)."""
        if self.vector_backend == "pgvector":
            from .vectors_pg import PgVectorDB

            return PgVectorDB(self.store.engine)
        return self.vectors

    def _open_media_collection(self) -> Any:
        names = {c.name for c in self.media_db.list_collections()}
        if MEDIA_COLLECTION not in names:
            return self.media_db.create_collection(
                CollectionConfig(
                    name=MEDIA_COLLECTION,
                    dim=HYBRID_DIM,
                    metric="cosine",
                    m=self.settings.hnsw_m,
                    ef_construction=self.settings.hnsw_ef_construction,
                    ef_search=self.settings.hnsw_ef_search,
                    precision="float32",
                )
            )
        return self.media_db.get_collection(MEDIA_COLLECTION)

    def close(self) -> None:
        self.vectors.close()
        if self.media_db is not self.vectors:
            self.media_db.close()
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- catalog ---------------------------------------------------------------------------
    def ingest(self, paths: Sequence[Path | str], *, progress: Progress | None = None) -> IngestReport:
        """Ingest catalog files, then index what changed. Returns the report."""
        with self.write_lock:
            report = ingest_files(
                self.store, [Path(p) for p in paths], model_name=self.embedder.name, progress=progress
            )
            if report.changed_ids:
                self.index_items(report.changed_ids, progress=progress)
                self.media.snapshot()
            return report

    def put_item(self, fields: dict[str, Any], item_id: int | None = None) -> MediaItem:
        """Create (no id) or update one item from JSON fields (docs/catalog-jsonl.md); API-written
        fields override dataset values. Committed and indexed before it returns."""
        from .catalog_writes import api_row, put_item

        return put_item(self, api_row(fields), item_id)

    def delete_item(self, item_id: int) -> None:
        """Delete an item from the store of record and the index (ItemNotFound if absent)."""
        from .catalog_writes import delete_item

        delete_item(self, item_id)

    def get_item(self, item_id: int) -> MediaItem:
        return self.store.get_item(item_id)

    def count(self) -> int:
        return self.store.count_items()

    # ----- indexing --------------------------------------------------------------------------
    def text_vectors(self, items: Sequence[MediaItem], *, progress: Progress | None = None) -> np.ndarray:
        """Text embeddings of items, from the content-hash cache where possible."""
        texts = [item_text(it) for it in items]
        hashes = [text_hash(self.embedder.name, t) for t in texts]
        cached = self.store.get_embeddings(hashes)
        missing = [i for i, h in enumerate(hashes) if h not in cached]
        fresh: dict[str, np.ndarray] = {}
        for start in range(0, len(missing), INDEX_BATCH):
            chunk = missing[start : start + INDEX_BATCH]
            vecs = self.embedder.encode([texts[i] for i in chunk])
            fresh.update({hashes[i]: v for i, v in zip(chunk, vecs, strict=True)})
            if progress:
                progress("embed", min(start + INDEX_BATCH, len(missing)), len(missing))
        self.store.put_embeddings(self.embedder.name, fresh)
        cached.update(fresh)
        return np.stack([cached[h] for h in hashes]) if hashes else np.zeros((0, 384), np.float32)

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
                self.mark_changed()
            if not present:
                continue
            text = self.text_vectors(present, progress=progress)
            vecs = np.stack([item_vector(it, t, self.weights) for it, t in zip(present, text, strict=True)])
            payloads = [item_payload(it, vector_hash(it, self.weights)) for it in present]
            self.media.upsert([it.id for it in present], vecs, payloads)
            self.mark_changed()
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

    def repair_index(self) -> dict[str, Any]:
        """Bring the media index in line with the store; says what it fixed."""
        with self.write_lock:
            report = self.check_index()
            if report["ok"]:
                return {"repaired": False, **_short(report)}
            if report["extra"]:
                self.media.delete(report["extra"])
            fix = report["missing"] + report["stale"]
            if fix:
                self.index_items(fix)
            self.media.snapshot()
            log.warning(
                "media index repaired from the store: %d missing, %d stale, %d extra",
                len(report["missing"]),
                len(report["stale"]),
                len(report["extra"]),
            )
            return {"repaired": True, **_short(report)}

    def load_demo_if_empty(self, path: str | Path | None = None) -> IngestReport | None:
        """Ingest the bundled demo catalog when the store has no items yet."""
        target = Path(path or self.settings.demo_catalog) if (path or self.settings.demo_catalog) else None
        if target is None or self.count() > 0:
            return None
        log.info("store is empty: loading demo catalog %s", target)
        return self.ingest([target])

    # ----- search ----------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, **options: Any) -> dict[str, Any]:
        """Natural-language search; see search.pipeline.SearchPipeline.search for options.

        Results are cached per (query, k, options) until the next catalog write (in memory, or in
        Redis shared by every process when `redis_url` is set).
        """
        cacheable = "today" not in options and "exclude_ids" not in options
        generation = self.result_cache.generation() if cacheable else -1
        key = (generation, query, k, tuple(sorted((n, repr(v)) for n, v in options.items())))
        if generation >= 0:
            hit = self.result_cache.get(key)
            if hit is not None:
                return hit
        result = self.search_pipeline.search(query, k=k, **options)
        if generation >= 0:
            self.result_cache.put(key, result)
        return result

    @property
    def search_cache_hits(self) -> int:
        return self.result_cache.hits

    @property
    def search_cache_misses(self) -> int:
        return self.result_cache.misses

    def mark_changed(self) -> None:
        """Invalidate cached search results after a write to the catalog or index."""
        self.result_cache.invalidate()

    def similar(self, item_id: int, k: int = 10, **options: Any) -> dict[str, Any]:
        """Items most like an item ("more like this")."""
        return self.search_pipeline.similar(item_id, k=k, **options)

    def item_vector(self, item_id: int) -> np.ndarray:
        try:
            vec, _payload = self.media.get(item_id)
        except Exception as exc:
            raise ItemNotFound(f"no item with id {item_id}", {"id": item_id}) from exc
        return vec

    def stats(self) -> dict[str, Any]:
        """Counts and index description; on PostgreSQL also the database's own figures."""
        out = {
            "items": self.count(),
            "indexed": int(self.media.count()),
            "backend": self.store.backend,
            "vector_backend": self.vector_backend,
            "embedding_model": self.embedder.name,
            "embedding_runtime": getattr(self.embedder, "query_backend", "torch"),
            "vector_dim": HYBRID_DIM,
            "collections": self.media_db.describe(MEDIA_COLLECTION),
            "uptime_s": round(time.time() - self.started_at, 1),
        }
        database_stats = getattr(self.store, "stats", None)
        if database_stats is not None:
            out["database"] = database_stats()
        return out


def _short(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "items": report["items"],
        "indexed": report["indexed"],
        "missing": len(report["missing"]),
        "extra": len(report["extra"]),
        "stale": len(report["stale"]),
    }
