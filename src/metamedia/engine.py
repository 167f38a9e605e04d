"""The composition root and public facade: builds every part once and hands each service its ports.

Every interface (Python API, CLI, HTTP, MCP) is a thin adapter over `Engine`. The engine opens the
store of record (`store`, SQLAlchemy engine `db`), the embedder, the vector database holding the
media index (`media_db`, faiss or pgvector) and the result cache, then wires the services:

    search_pipeline  SearchPipeline(store, media, embedder, settings, weights)
    indexer          MediaIndexer(store, media, embedder, weights, on_change=mark_changed)
    catalog_writes   CatalogWrites(store, indexer, write_lock)
    recs             RecommendService(db, store, media, changes=store, search, bandit, memory, publish)
    memory           AgentMemory(db, embedder)
    bandit           BanditService(db)

`recs`, `memory` and `bandit` open on first use (they create their tables then). One interaction
goes through `recs.feedback` (recommend.feedback.FeedbackHub) to its listeners.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.engine import Engine as Database

from .bandit.service import PEER_WAIT_S, BanditService
from .catalog_writes import CatalogWrites, api_row
from .embed.hybrid import HYBRID_DIM, HybridWeights
from .embed.model import TextEmbedder
from .errors import BackendUnavailable, Conflict
from .indexing import MEDIA_FILTER_FIELDS, MediaIndexer, item_payload, vector_hash
from .ingest.ray_ingest import RayEmbedReport, RayIngestOptions, embed_on_ray
from .ingest.run import IngestReport, Progress, ingest_files
from .memory.service import AgentMemory
from .models import MediaItem
from .ports import EventSink, VectorCollection, VectorDatabase
from .recommend.service import RecommendService
from .search.cache import MemoryResultCache, ResultCache, open_result_cache
from .search.offline_index import export_index
from .search.pipeline import SearchPipeline, indexed_vector
from .settings import Settings
from .store.factory import open_store
from .vectors import CollectionConfig, VectorDB

if TYPE_CHECKING:  # the `postgres` extra is optional at run time
    from .vectors_pg import PgVectorDB

__all__ = ["MEDIA_COLLECTION", "Engine", "item_payload", "vector_hash"]

log = logging.getLogger("metamedia.engine")

MEDIA_COLLECTION = "media"
# Collections the engine owns: readable through /collections, written only by the engine itself.
ENGINE_COLLECTIONS = frozenset({MEDIA_COLLECTION})
SEARCH_CACHE_SIZE = 1024


class Engine:
    """metamedia's one service object."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        embedder: TextEmbedder | None = None,
        wrap_media: Callable[[VectorCollection], VectorCollection] | None = None,
    ) -> None:
        self.settings = settings or Settings.from_env()
        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        self.store = open_store(self.settings.resolved_database_url)
        self.embedder: TextEmbedder = embedder or TextEmbedder(
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
        self.vectors = VectorDB(self.db, Path(self.settings.data_dir))
        self.vector_backend = self.settings.resolved_vector_backend
        self.media_db: VectorDatabase = self._open_media_db()
        self.write_lock = threading.RLock()
        self.result_cache: ResultCache = open_result_cache(self.settings.redis_url, SEARCH_CACHE_SIZE)
        # Writes of other processes over this data dir (workers, a CLI ingest): docs/architecture.md.
        self.beacon = self.vectors.shared.beacon
        self._beacon_seen = self.beacon.value()
        if self.store.backend == "sqlite":  # every writer shares this machine, so this beacon
            self.store.catalog_changes.watch(self._beacon_stamp)
        self.media: VectorCollection = self._open_media_collection()
        if wrap_media is not None:  # e.g. searches served by Ray index shards (metamedia.distributed)
            self.media = wrap_media(self.media)
        self.started_at = time.time()
        self.search_pipeline = SearchPipeline(
            self.store, self.media, self.embedder, self.settings, self.weights
        )
        self.indexer = MediaIndexer(self.store, self.media, self.embedder, self.weights, self.mark_changed)
        self.catalog_writes = CatalogWrites(self.store, self.indexer, self.write_lock)
        self.listeners: list[EventSink] = []
        self._lazy_lock = threading.Lock()
        self._recs: RecommendService | None = None
        self._memory: AgentMemory | None = None
        self._bandit: BanditService | None = None

    @property
    def db(self) -> Database:
        """The SQLAlchemy engine of the store of record."""
        return self.store.db

    # ----- the other layers, opened on first use ----------------------------------------------
    @property
    def recs(self) -> RecommendService:
        """Users, interactions and recommendations."""
        if self._recs is None:
            with self._lazy_lock:
                if self._recs is None:
                    self._recs = RecommendService(
                        self.db,
                        self.store,
                        self.media,
                        changes=self.store,
                        search=self.search,
                        bandit=lambda: self.bandit,
                        memory=lambda: self.memory,
                        publish=self.publish,
                        items=self.search_pipeline.items,
                    )
        return self._recs

    @property
    def memory(self) -> AgentMemory:
        """Agent memory on the store of record."""
        if self._memory is None:
            with self._lazy_lock:
                if self._memory is None:
                    self._memory = AgentMemory(self.db, self.embedder)
        return self._memory

    @property
    def bandit(self) -> BanditService:
        """The algorithm-picking bandit."""
        if self._bandit is None:
            with self._lazy_lock:
                if self._bandit is None:
                    several = getattr(self.settings, "workers", 1) != 1  # other processes log decisions too
                    self._bandit = BanditService(self.db, peer_wait_s=PEER_WAIT_S if several else 0.0)
        return self._bandit

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Tell listeners (the HTTP event stream, metrics) that something happened."""
        for listener in list(self.listeners):
            try:
                listener(kind, data)
            except Exception:  # a broken listener must not fail the write that was already committed
                log.exception("event listener failed for %s", kind)

    # ----- lifecycle -------------------------------------------------------------------------
    def _open_media_db(self) -> VectorDatabase:
        """The vector database holding the media index: the embedded faiss store, or pgvector
        inside the PostgreSQL store of record (same collection API, durable without snapshots)."""
        if self.vector_backend == "pgvector":
            # deferred: vectors_pg needs psycopg and pgvector, the optional `postgres` extra
            from .vectors_pg import PgVectorDB

            return PgVectorDB(self.db)
        return self.vectors

    def _open_media_collection(self) -> VectorCollection:
        if self.vector_backend == "pgvector":
            # deferred: vectors_pg needs psycopg and pgvector, the optional `postgres` extra
            from .vectors_pg import PgVectorDB

            if isinstance(self.media_db, PgVectorDB):
                return self._open_media_collection_pg(self.media_db)
        names = {c.name for c in self.media_db.list_collections()}
        if MEDIA_COLLECTION not in names:
            return self.media_db.create_collection(self._media_config())
        return self.media_db.get_collection(MEDIA_COLLECTION)

    def _open_media_collection_pg(self, db: PgVectorDB) -> VectorCollection:
        """The pgvector media collection with typed, btree-indexed columns for the fields search
        filters on; a collection made before them gets them once (a table rewrite), then a no-op."""
        if db.has_collection(MEDIA_COLLECTION):
            return db.index_filter_fields(MEDIA_COLLECTION, MEDIA_FILTER_FIELDS)
        return db.create_collection(self._media_config(), filter_fields=MEDIA_FILTER_FIELDS)

    def _media_config(self) -> CollectionConfig:
        return CollectionConfig(
            name=MEDIA_COLLECTION,
            dim=HYBRID_DIM,
            metric="cosine",
            m=self.settings.hnsw_m,
            ef_construction=self.settings.hnsw_ef_construction,
            ef_search=self.settings.hnsw_ef_search,
            precision="float32",
        )

    def snapshot_vectors(self) -> dict[str, str]:
        """Snapshot every collection of the media index's database now: {name: snapshot folder}.
        Empty on pgvector, where every write is already durable in PostgreSQL."""
        if not isinstance(self.media_db, VectorDB):
            return {}
        with self.write_lock:
            written = self.media_db.snapshot_all()
        return {name: path.name for name, path in written.items()}

    def backup_vectors(self, dest: Path) -> dict[str, Any]:
        """Back up every collection of the media index's database into `dest` (faiss). On pgvector
        the collections are tables of the store of record: Conflict, back up the database instead."""
        if not isinstance(self.media_db, VectorDB):
            raise Conflict(
                "the vector collections live in PostgreSQL (pgvector): back up the database "
                "(pg_dump) instead of data_dir"
            )
        with self.write_lock:
            return self.media_db.backup(dest)

    def close(self, *, snapshot: bool = True) -> None:
        """Close every store; `snapshot=False` leaves the vector snapshots to another process."""
        if self._bandit is not None:
            self._bandit.close()  # writes its queued decisions
        self.vectors.close(snapshot=snapshot)
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

    def ingest_ray(
        self, paths: Sequence[Path | str], options: RayIngestOptions | None = None,
        *, progress: Progress | None = None,
    ) -> tuple[IngestReport, RayEmbedReport]:  # fmt: skip
        """Ingest catalog files with the text embedding on a Ray cluster (docs/scale-out.md), then
        index every item the media index lacks or holds stale. Resumes a stopped run."""
        with self.write_lock:
            report = ingest_files(
                self.store, [Path(p) for p in paths], model_name=self.embedder.name, progress=progress
            )
            embedded = embed_on_ray(
                self.store, self.settings.resolved_database_url, model_name=self.embedder.name,
                model_path=self.settings.model_path, options=options, progress=progress,
            )  # fmt: skip
            check = self.indexer.check_index()
            todo = sorted(set(report.changed_ids) | set(check["missing"]) | set(check["stale"]))
            if todo:
                self.index_items(todo, progress=progress)
                self.media.snapshot()
            return report, embedded

    def put_item(self, fields: dict[str, Any], item_id: int | None = None) -> MediaItem:
        """Create (no id) or update one item from JSON fields (docs/catalog-jsonl.md); API-written
        fields override dataset values. Committed and indexed before it returns."""
        with self.writing():
            return self.catalog_writes.put_item(api_row(fields), item_id)

    def delete_item(self, item_id: int) -> None:
        """Delete an item from the store of record and the index (ItemNotFound if absent)."""
        with self.writing():
            self.catalog_writes.delete_item(item_id)

    def writing(self) -> AbstractContextManager[None]:
        """Mark a catalog write pending: searches give the interpreter lock room meanwhile."""
        return self.search_pipeline.slots.writing()

    def get_item(self, item_id: int) -> MediaItem:
        return self.store.get_item(item_id)

    def count(self) -> int:
        return self.store.count_items()

    # ----- indexing --------------------------------------------------------------------------
    def text_vectors(self, items: Sequence[MediaItem], *, progress: Progress | None = None) -> np.ndarray:
        """Text embeddings of items, from the content-hash cache where possible."""
        return self.indexer.text_vectors(items, progress=progress)

    def index_items(self, item_ids: Sequence[int], *, progress: Progress | None = None) -> int:
        """(Re)compute hybrid vectors of the given items and upsert them into the media collection."""
        return self.indexer.index_items(item_ids, progress=progress)

    def media_index_present(self) -> bool:
        """False when the media collection is gone from its vector database (dropped, lost files)."""
        return MEDIA_COLLECTION in {c.name for c in self.media_db.list_collections()}

    def check_index(self) -> dict[str, Any]:
        """Compare the media index with the store of record: missing, extra and stale items."""
        if not self.media_index_present():
            stored = sorted(self.store.item_ids())
            return {"ok": False, "items": len(stored), "indexed": 0, "missing": stored,
                    "extra": [], "stale": [], "index_present": False}  # fmt: skip
        return self.indexer.check_index()

    def repair_index(self, *, progress: Progress | None = None) -> dict[str, Any]:
        """Bring the media index in line with the store; says what it fixed."""
        with self.write_lock:
            report = self.check_index()
            if report["ok"]:
                return {"repaired": False, **_short(report)}
            if not report.get("index_present", True):
                # Every service holds the collection it was given: it is re-created at the next start.
                raise BackendUnavailable(
                    "the media index is missing; restart the server to rebuild it from the store"
                )
            if report["extra"]:
                self.media.delete(report["extra"])
                self.mark_changed()  # the recommender's snapshot holds indexed items too
            fix = report["missing"] + report["stale"]
            if fix:
                self.index_items(fix, progress=progress)
            self.media.snapshot()
            log.warning(
                "media index repaired from the store: %d missing, %d stale, %d extra",
                len(report["missing"]),
                len(report["stale"]),
                len(report["extra"]),
            )
            return {"repaired": True, **_short(report)}

    # ----- search ----------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, **options: Any) -> dict[str, Any]:
        """Natural-language search; see search.pipeline.SearchPipeline.search for options.

        Results are cached per (query, k, options) until the next catalog write (in memory, or in
        Redis shared by every process when `redis_url` is set).
        """
        cacheable = "today" not in options and "exclude_ids" not in options
        if self.beacon.value() != self._beacon_seen:
            self._catch_up()
        generation = self.result_cache.generation() if cacheable else -1
        key = _search_key(generation, query, k, options)
        if generation >= 0:
            hit = self.result_cache.get(key)
            if hit is not None:
                return hit
        result = self.search_pipeline.search(query, k=k, **options)
        if generation >= 0:
            self.result_cache.put(key, result)
        return result

    def cached_search_text(self, query: str, k: int = 10, **options: Any) -> str | None:
        """`search`'s answer as JSON text when the in-process result cache holds it, else None.

        Never blocks (a lock-guarded dict lookup), so the HTTP server may call it on its event loop
        and answer a repeated search without a worker thread; other cache backends return None."""
        cache = self.result_cache
        if not isinstance(cache, MemoryResultCache) or "today" in options or "exclude_ids" in options:
            return None
        if self.beacon.value() != self._beacon_seen:
            self._catch_up()
        return cache.get_text(_search_key(cache.generation(), query, k, options))

    @property
    def search_cache_hits(self) -> int:
        return self.result_cache.hits

    @property
    def search_cache_misses(self) -> int:
        return self.result_cache.misses

    def mark_changed(self) -> None:
        """After a write to the catalog or index: move the store's generation on (every in-memory
        view compares it before answering), invalidate cached search results, and bump the data
        dir's change beacon so other processes over it do the same at their next request."""
        self.store.bump_generation()
        self.result_cache.invalidate()
        self.beacon.bump()

    def _beacon_stamp(self) -> int:
        """The beacon's value; a new one at every call while it is unavailable (read-only data dir),
        so views gated on it read the store each time."""
        value = self.beacon.value()
        return value if self.beacon.available else -time.monotonic_ns()

    def _catch_up(self) -> None:
        """Another process committed a write: drop this process's cached results. (The vector
        collections catch up at their own next read; the item cache and the recommender compare
        the store's generation.) Never blocks, so the event loop may call it."""
        seen = self.beacon.value()
        if isinstance(self.result_cache, MemoryResultCache):  # Redis is shared: invalidated by the writer
            self.result_cache.invalidate()
        self._beacon_seen = seen

    def similar(self, item_id: int, k: int = 10, **options: Any) -> dict[str, Any]:
        """Items most like an item ("more like this")."""
        return self.search_pipeline.similar(item_id, k=k, **options)

    def item_vector(self, item_id: int) -> np.ndarray:
        return indexed_vector(self.media, item_id)

    def offline_index(self, since: int | None = None, after: float | None = None) -> dict[str, Any]:
        """The catalog index for the offline web app (search/offline_index.py), whole or incremental."""
        ranking = {
            name: float(getattr(self.settings, name))
            for name in ("search_oversample", "trend_weight", "trend_half_life_days", "diversity_lambda")
        }
        return export_index(self.store, self.media, self.weights, since=since, after=after, ranking=ranking)

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


def _search_key(generation: int, query: str, k: int, options: dict[str, Any]) -> tuple[Any, ...]:
    return (generation, query, k, tuple(sorted((n, repr(v)) for n, v in options.items())))


def _short(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "items": report["items"],
        "indexed": report["indexed"],
        "missing": len(report["missing"]),
        "extra": len(report["extra"]),
        "stale": len(report["stale"]),
    }
