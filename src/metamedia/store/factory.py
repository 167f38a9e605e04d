"""Pick the store backend from the database URL."""

from __future__ import annotations

from ..errors import BackendUnavailable, InvalidInput
from .postgres import PgCatalogStore
from .sql import SqlCatalogStore


def open_store(url: str) -> SqlCatalogStore:
    """Open (and create the schema of) the store of record named by a SQLAlchemy URL."""
    if url.startswith("sqlite"):
        store = SqlCatalogStore(url)
    elif url.startswith(("postgresql", "postgres")):
        try:
            # deferred: psycopg is the optional `postgres` extra
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise BackendUnavailable(
                "PostgreSQL support is not installed: pip install 'metamedia[postgres]'"
            ) from exc
        store = PgCatalogStore(url)
    else:
        raise InvalidInput(
            f"unsupported database URL scheme in {url.split(':', 1)[0]!r}: use sqlite:/// or postgresql://"
        )
    store.create_schema()
    return store
