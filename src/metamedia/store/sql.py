"""SQLAlchemy Core implementation of the catalog store (SQLite today, PostgreSQL through the same SQL)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Table, bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import Insert

from ..errors import InvalidInput, ItemNotFound
from ..models import MediaItem
from .base import ItemWrite, OrphanRow, SourceRow
from .generations import CATALOG, Generation
from .migrations import upgrade_schema
from .schema import embedding_cache, item_sources, items, orphan_sources, settings_kv

ITEM_FIELDS = [c.name for c in items.columns]
KEY_COLUMNS = {"tmdb_id": items.c.tmdb_id, "imdb_id": items.c.imdb_id, "movielens_id": items.c.movielens_id}
_CHUNK = 500


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # Asking to switch to WAL takes a lock, which waits out busy_timeout behind a writer: a
    # connection opened under write load stalled for seconds. WAL persists in the file, so only a
    # database not in WAL yet (a new one) is switched.
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


SQLITE_POOL_SIZE = 48
SQLITE_POOL_OVERFLOW = 16


def make_engine(url: str) -> Engine:
    """A SQLAlchemy engine with the settings each backend needs for durability."""
    if url.startswith("sqlite"):
        # Connections are cheap on SQLite; the pool is sized for the HTTP server's worker threads
        # (40 by default) so requests never queue for a connection or churn through new ones.
        in_memory = url in ("sqlite://", "sqlite:///") or ":memory:" in url or "mode=memory" in url
        pool = {} if in_memory else {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_OVERFLOW}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _insert_new_only(db: Engine, table: Table) -> Insert:
    """INSERT that skips rows whose primary key is already stored (ON CONFLICT DO NOTHING), so two
    writers racing on the same key (a retried Ray batch, two workers) neither fail nor double."""
    keys = [c.name for c in table.primary_key.columns]
    if db.dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing(index_elements=keys)
    if db.dialect.name == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing(index_elements=keys)
    return insert(table)  # pragma: no cover - only SQLite and PostgreSQL are supported


def _embedding_rows(model: str, vectors: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    return [
        {"content_hash": h, "model": model, "dim": int(v.shape[0]), "vector": v.astype(np.float32).tobytes()}
        for h, v in vectors.items()
    ]


def _row_to_item(row: Any) -> MediaItem:
    m = row._mapping
    return MediaItem(
        id=m["id"],
        title=m["title"],
        media_type=m["media_type"],
        original_title=m["original_title"],
        overview=m["overview"],
        tagline=m["tagline"],
        genres=list(m["genres"] or []),
        keywords=list(m["keywords"] or []),
        release_date=m["release_date"],
        year=m["year"],
        runtime=m["runtime"],
        vote_average=m["vote_average"],
        vote_count=m["vote_count"],
        popularity=m["popularity"],
        language=m["language"],
        poster_path=m["poster_path"],
        tmdb_id=m["tmdb_id"],
        imdb_id=m["imdb_id"],
        movielens_id=m["movielens_id"],
        companies=list(m["companies"] or []),
        collection=m["collection"],
        countries=list(m["countries"] or []),
        source=m["source"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


_INSERT_ITEM = insert(items)
_INSERT_SOURCE = insert(item_sources)
_DELETE_SOURCE = delete(item_sources).where(
    (item_sources.c.item_id == bindparam("iid"))
    & (item_sources.c.source == bindparam("src"))
    & (item_sources.c.origin == bindparam("org"))
)


class SqlCatalogStore:
    """Catalog store over any SQLAlchemy engine. Every write commits before it returns."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.db = make_engine(url)
        self.backend = self.db.dialect.name
        self.catalog_changes = Generation(self.db, CATALOG)

    def create_schema(self) -> None:
        """Bring the schema to the newest migration (creates it on an empty database)."""
        upgrade_schema(self.db)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine under its former name (`db` is the name to use)."""
        return self.db

    def close(self) -> None:
        self.db.dispose()

    def count_items(self) -> int:
        with self.db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(items)).scalar_one())

    def item_ids(self) -> list[int]:
        with self.db.connect() as conn:
            return [r[0] for r in conn.execute(select(items.c.id).order_by(items.c.id))]

    def ids_without_embedding(self) -> list[int]:
        """Items whose content hash (model and text) has no vector in the embedding cache yet."""
        cached = select(embedding_cache.c.content_hash).where(
            embedding_cache.c.content_hash == items.c.content_hash
        )
        with self.db.connect() as conn:
            q = select(items.c.id).where(~cached.exists()).order_by(items.c.id)
            return [r[0] for r in conn.execute(q)]

    def get_item(self, item_id: int) -> MediaItem:
        if not 0 < int(item_id) < 2**63:
            raise ItemNotFound(f"no item with id {item_id}", {"id": item_id})
        with self.db.connect() as conn:
            row = conn.execute(select(items).where(items.c.id == item_id)).first()
        if row is None:
            raise ItemNotFound(f"no item with id {item_id}", {"id": item_id})
        return _row_to_item(row)

    def get_items(self, item_ids: Sequence[int]) -> dict[int, MediaItem]:
        out: dict[int, MediaItem] = {}
        ids = [int(i) for i in item_ids]
        with self.db.connect() as conn:
            for chunk in _chunks(ids):
                for row in conn.execute(select(items).where(items.c.id.in_(chunk))):
                    item = _row_to_item(row)
                    out[item.id] = item
        return out

    def iter_items(self, batch_size: int = 1000) -> Iterator[MediaItem]:
        last = 0
        while True:
            with self.db.connect() as conn:
                rows = conn.execute(
                    select(items).where(items.c.id > last).order_by(items.c.id).limit(batch_size)
                ).all()
            if not rows:
                return
            for row in rows:
                yield _row_to_item(row)
            last = rows[-1]._mapping["id"]

    def find_ids(self, key: str, values: Sequence[Any]) -> dict[Any, int]:
        """Map external ids (tmdb_id, imdb_id or movielens_id) to item ids."""
        col = KEY_COLUMNS.get(key)
        if col is None:
            raise InvalidInput(f"unknown external id {key!r}")
        out: dict[Any, int] = {}
        vals = [v for v in dict.fromkeys(values) if v is not None]
        with self.db.connect() as conn:
            for chunk in _chunks(vals):
                for ext, item_id in conn.execute(select(col, items.c.id).where(col.in_(chunk))):
                    out[ext] = item_id
        return out

    def load_sources(self, item_ids: Sequence[int]) -> dict[int, list[SourceRow]]:
        out: dict[int, list[SourceRow]] = {int(i): [] for i in item_ids}
        with self.db.connect() as conn:
            for chunk in _chunks(list(out)):
                q = select(item_sources).where(item_sources.c.item_id.in_(chunk))
                for row in conn.execute(q):
                    m = row._mapping
                    out[m["item_id"]].append(SourceRow(m["source"], m["origin"], dict(m["data"])))
        return out

    def write_items(
        self, writes: Sequence[ItemWrite], embeddings: tuple[str, dict[str, np.ndarray]] | None = None
    ) -> list[int]:
        """Insert/update items and their source rows in ONE transaction; returns the item ids.
        `embeddings` (model, vectors by content hash) are cached in the same transaction: one commit
        (one fsync) for a whole write instead of two."""
        now = time.time()
        ids: list[int] = []
        with self.db.begin() as conn:
            rows = _embedding_rows(*embeddings) if embeddings else []
            if rows:
                conn.execute(_insert_new_only(self.db, embedding_cache), rows)
            for w in writes:
                for chunk in _chunks(w.consumed_orphans):
                    conn.execute(delete(orphan_sources).where(orphan_sources.c.id.in_(chunk)))
                for dup in w.absorb_ids:
                    conn.execute(delete(item_sources).where(item_sources.c.item_id == dup))
                    conn.execute(delete(items).where(items.c.id == dup))
                fields = {
                    k: v for k, v in w.fields.items() if k in ITEM_FIELDS and k not in ("id", "created_at")
                }
                fields["updated_at"] = now
                # one row per (source, origin): the last one given wins, as before
                sources = list({(src.source, src.origin): src for src in w.sources}.values())
                if w.item_id is None:  # parameters, not .values(): one compiled statement for every row
                    fields["created_at"] = now
                    inserted = conn.execute(_INSERT_ITEM, fields).inserted_primary_key
                    if inserted is None:
                        raise RuntimeError("the database returned no id for a new item")
                    item_id = int(inserted[0])
                else:
                    item_id = w.item_id
                    conn.execute(update(items).where(items.c.id == item_id).values(**fields))
                    if sources:  # a new item has no source rows to replace
                        conn.execute(
                            _DELETE_SOURCE,
                            [{"iid": item_id, "src": src.source, "org": src.origin} for src in sources],
                        )
                if sources:
                    conn.execute(
                        _INSERT_SOURCE,
                        [
                            {"item_id": item_id, "source": src.source, "origin": src.origin, "data": src.data}
                            for src in sources
                        ],
                    )
                ids.append(item_id)
        return ids

    def delete_item(self, item_id: int) -> None:
        with self.db.begin() as conn:
            conn.execute(delete(item_sources).where(item_sources.c.item_id == item_id))
            if conn.execute(delete(items).where(items.c.id == item_id)).rowcount == 0:
                raise ItemNotFound(f"no item with id {item_id}", {"id": item_id})

    def find_orphans(self, key: str, values: Sequence[Any]) -> list[OrphanRow]:
        """Waiting id-only rows that carry any of the given external ids."""
        col = orphan_sources.c[key]
        vals = [v for v in dict.fromkeys(values) if v is not None]
        out: list[OrphanRow] = []
        with self.db.connect() as conn:
            for chunk in _chunks(vals):
                for row in conn.execute(select(orphan_sources).where(col.in_(chunk))):
                    m = row._mapping
                    out.append(OrphanRow(m["id"], m["source"], m["origin"], dict(m["data"])))
        return out

    def replace_orphans(self, origins: Sequence[tuple[str, str]], rows: Sequence[SourceRow]) -> None:
        """Replace the waiting id-only rows of the given (source, file) pairs with `rows`, in one transaction."""
        with self.db.begin() as conn:
            for source, origin in origins:
                conn.execute(
                    delete(orphan_sources).where(
                        (orphan_sources.c.source == source) & (orphan_sources.c.origin == origin)
                    )
                )
            if rows:
                conn.execute(
                    insert(orphan_sources),
                    [
                        {
                            "source": r.source,
                            "origin": r.origin,
                            "data": r.data,
                            **{k: r.data.get(k) for k in KEY_COLUMNS},
                        }
                        for r in rows
                    ],
                )

    def get_embeddings(self, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self.db.connect() as conn:
            for chunk in _chunks(list(dict.fromkeys(hashes))):
                q = select(embedding_cache.c.content_hash, embedding_cache.c.vector).where(
                    embedding_cache.c.content_hash.in_(chunk)
                )
                for h, blob in conn.execute(q):
                    out[h] = np.frombuffer(blob, dtype=np.float32).copy()
        return out

    def put_embeddings(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        if not vectors:
            return
        existing = self.get_embeddings(list(vectors))
        rows = _embedding_rows(model, {h: v for h, v in vectors.items() if h not in existing})
        if rows:
            with self.db.begin() as conn:
                conn.execute(_insert_new_only(self.db, embedding_cache), rows)

    def get_meta(self, key: str) -> str | None:
        with self.db.connect() as conn:
            return conn.execute(select(settings_kv.c.value).where(settings_kv.c.key == key)).scalar()

    def set_meta(self, key: str, value: str) -> None:
        with self.db.begin() as conn:
            conn.execute(delete(settings_kv).where(settings_kv.c.key == key))
            conn.execute(insert(settings_kv).values(key=key, value=value))

    # ----- the catalog's change feed -------------------------------------------------------------
    def generation(self) -> int:
        """How many committed changes of the catalog and its index there have been (see bump)."""
        return self.catalog_changes.generation()

    def bump_generation(self) -> int:
        """Move the catalog generation on by one, atomically across processes; returns the new number."""
        return self.catalog_changes.bump()
