"""PostgreSQL specifics of the store of record: URL normalisation, the pooled engine, pgvector
detection, database statistics, and retry of writes that a server restart interrupted.

The store itself is the shared SQLAlchemy Core code in `sql.py`; this module only adds what
PostgreSQL needs on top. Connections come from SQLAlchemy's pool over psycopg 3 with
`pool_pre_ping`, so a connection killed by a server restart is replaced on next checkout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from ..errors import BackendUnavailable, InvalidInput
from .base import ItemWrite
from .generations import CATALOG, Generation
from .migrations import upgrade_schema
from .sql import SqlCatalogStore

log = logging.getLogger("metamedia.store.postgres")
T = TypeVar("T")

PG_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")
# The oldest pgvector with iterative index scans (hnsw.iterative_scan); older ones need planning around.
ITERATIVE_SCAN_VERSION = (0, 8, 0)


def is_postgres_url(url: str) -> bool:
    """True for any PostgreSQL URL spelling metamedia accepts."""
    return url.startswith(PG_SCHEMES)


def normalise_url(url: str) -> str:
    """The SQLAlchemy URL that selects the psycopg 3 driver for any PostgreSQL URL spelling."""
    if url.startswith("postgresql+psycopg://"):
        return url
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise InvalidInput(f"not a PostgreSQL URL: {url.split(':', 1)[0]!r}")


def make_pg_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """A pooled psycopg 3 engine that tests connections before use (survives server restarts)."""
    try:
        # deferred: psycopg is the optional `postgres` extra
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(
            "PostgreSQL support is not installed: pip install 'metamedia[postgres]'"
        ) from exc
    return create_engine(
        normalise_url(url),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=3600,
    )


@dataclass(frozen=True)
class PgVectorInfo:
    """The pgvector extension as installed in the connected database."""

    version: tuple[int, ...]

    @property
    def iterative_scan(self) -> bool:
        """Whether HNSW index scans can continue past ef_search when a filter rejects rows."""
        return self.version >= ITERATIVE_SCAN_VERSION

    @property
    def version_text(self) -> str:
        return ".".join(str(p) for p in self.version)


def parse_version(raw: str) -> tuple[int, ...]:
    """'0.6.2' -> (0, 6, 2); suffixes such as '-dev' are ignored."""
    parts: list[int] = []
    for piece in raw.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    if not parts:
        raise InvalidInput(f"cannot read a version from {raw!r}")
    return tuple(parts)


def ensure_pgvector(engine: Engine) -> PgVectorInfo:
    """Create the `vector` extension if needed and return its version; BackendUnavailable if absent."""
    with engine.begin() as conn:
        available = conn.execute(
            text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
        ).scalar()
        if available is None:
            raise BackendUnavailable("the pgvector extension is not available on this PostgreSQL server")
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    info = detect_pgvector(engine)
    if info is None:
        raise BackendUnavailable("the pgvector extension could not be created")
    return info


def detect_pgvector(engine: Engine) -> PgVectorInfo | None:
    """The installed pgvector version, or None when the extension is not created in this database."""
    with engine.connect() as conn:
        raw = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
    return None if raw is None else PgVectorInfo(parse_version(str(raw)))


def database_stats(engine: Engine) -> dict[str, Any]:
    """Health and size figures read from the database itself: server and pgvector versions,
    database size, and per table its exact row count, table size and index size."""
    with engine.connect() as conn:
        server = conn.execute(text("SHOW server_version")).scalar()
        db_bytes = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
        rows = conn.execute(
            text(
                "SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.relname"
            )
        ).all()
        tables: dict[str, dict[str, int]] = {}
        for name, table_bytes, index_bytes in rows:
            quoted = conn.dialect.identifier_preparer.quote(name)
            count = conn.execute(text(f"SELECT count(*) FROM {quoted}")).scalar_one()  # noqa: S608
            tables[name] = {
                "rows": int(count),
                "table_bytes": int(table_bytes),
                "index_bytes": int(index_bytes),
            }
    vector = detect_pgvector(engine)
    return {
        "backend": "postgresql",
        "server_version": server,
        "pgvector_version": vector.version_text if vector else None,
        "iterative_scan": bool(vector and vector.iterative_scan),
        "database_bytes": int(db_bytes or 0),
        "tables": tables,
    }


def is_disconnect(exc: BaseException) -> bool:
    """True when the error means the connection was lost (server restart, network), not bad SQL."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError)


def retry_on_disconnect(fn: Callable[[], T], *, attempts: int = 20, delay: float = 0.25) -> T:
    """Run `fn`, retrying while the server is unreachable. Only for calls that are safe to repeat:
    the transaction either committed (and the call is idempotent) or rolled back."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except DBAPIError as exc:
            if not is_disconnect(exc) or attempt == attempts:
                raise
            log.warning(
                "database connection lost (%s); retry %d/%d", type(exc.orig).__name__, attempt, attempts
            )
            time.sleep(delay * min(attempt, 8))
    raise AssertionError("unreachable")  # pragma: no cover


class PgCatalogStore(SqlCatalogStore):
    """The shared SQL store on a pooled psycopg 3 engine, retrying idempotent writes across a
    server restart. Inserts of new items are not retried: their commit may have happened before
    the connection broke, and a blind retry could duplicate them; the caller sees the error."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = normalise_url(url)
        self.db = make_pg_engine(self.url, pool_size=pool_size)
        self.backend = self.db.dialect.name
        self.catalog_changes = Generation(self.db, CATALOG)  # never watched: writers on other machines

    def create_schema(self) -> None:
        retry_on_disconnect(lambda: upgrade_schema(self.db))

    def write_items(
        self, writes: Sequence[ItemWrite], embeddings: tuple[str, dict[str, np.ndarray]] | None = None
    ) -> list[int]:
        if any(w.item_id is None for w in writes):
            return super().write_items(writes, embeddings)
        return retry_on_disconnect(lambda: super(PgCatalogStore, self).write_items(writes, embeddings))

    def put_embeddings(self, model: str, vectors: dict[str, np.ndarray]) -> None:
        retry_on_disconnect(lambda: super(PgCatalogStore, self).put_embeddings(model, vectors))

    def set_meta(self, key: str, value: str) -> None:
        retry_on_disconnect(lambda: super(PgCatalogStore, self).set_meta(key, value))

    def replace_orphans(self, *args: Any, **kwargs: Any) -> None:
        retry_on_disconnect(lambda: super(PgCatalogStore, self).replace_orphans(*args, **kwargs))

    def stats(self) -> dict[str, Any]:
        """Counts, table and index sizes, server and pgvector versions."""
        return retry_on_disconnect(lambda: database_stats(self.db))


def open_pg_store(url: str) -> PgCatalogStore:
    """Open a PostgreSQL store of record and bring its schema to the latest migration."""
    store = PgCatalogStore(url)
    store.create_schema()
    return store
