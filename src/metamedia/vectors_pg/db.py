"""PgVectorDB: the catalog of pgvector collections in one PostgreSQL database."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, delete, insert, select, text, update
from sqlalchemy.engine import Connection, Engine

from ..errors import CollectionNotFound, Conflict, InvalidInput
from ..store.migrations import upgrade_schema
from ..store.postgres import PgVectorInfo, ensure_pgvector
from ..vectors.config import CollectionConfig
from .collection import METRIC_SQL, PgCollection, search_connections
from .typed import TypedField, check_typed_fields, expected_indexes

_md = MetaData()
pg_collections = Table(
    "pgvector_collections",
    _md,
    Column("name", String(64), primary_key=True),
    Column("config", Text, nullable=False),  # CollectionConfig as JSON
)


class PgVectorDB:
    """Create, open, list, describe and drop pgvector collections. Detects pgvector at start."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name != "postgresql":
            raise InvalidInput("PgVectorDB needs a PostgreSQL engine")
        self.engine = engine
        self.pgvector: PgVectorInfo = ensure_pgvector(engine)
        upgrade_schema(engine)
        self.searches = search_connections(engine, self.pgvector)  # shared by every collection

    def create_collection(
        self,
        config: CollectionConfig,
        *,
        filter_fields: Mapping[str, str] | None = None,
        covering_fields: Iterable[str] = (),
    ) -> PgCollection:
        """A new collection; `filter_fields` ({field: "number" | "string"}) get typed, indexed
        columns so filters on them run through btree indexes (see typed.py). `covering_fields`
        (some of them) get a btree that also holds (id, embedding): exact filtered scans on them
        read the index alone, for one more copy of every vector on disk per field."""
        typed = check_typed_fields(filter_fields, covering_fields)
        if config.precision != "float32":
            raise InvalidInput(
                f"precision {config.precision!r} is not available on PostgreSQL (pgvector "
                f"{self.pgvector.version_text}): use float32"
            )
        if config.metric not in METRIC_SQL:
            raise InvalidInput(f"unknown metric {config.metric!r}")
        if config.dim > 2000 and METRIC_SQL[config.metric][1] is not None:
            raise InvalidInput("pgvector HNSW indexes hold at most 2000 dimensions")
        collection = PgCollection(self.engine, config, self.pgvector, self.searches, typed)
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('metamedia_pgvector_catalog'))"))
            if conn.execute(
                select(pg_collections.c.name).where(pg_collections.c.name == config.name)
            ).first():
                raise Conflict(f"collection {config.name!r} already exists")
            conn.execute(insert(pg_collections).values(name=config.name, config=_catalog_json(config, typed)))
            collection.create_tables(conn)
        return collection

    def index_filter_fields(
        self, name: str, filter_fields: Mapping[str, str], covering_fields: Iterable[str] = ()
    ) -> PgCollection:
        """Migration for an existing collection: add typed, indexed columns for `filter_fields`
        (a table rewrite; fields already indexed are kept; `covering_fields` as in
        `create_collection`, a covering index once given is kept) and record them in the catalog.
        Also brings the indexes of fields typed by an older version up to the current layout
        (the partial index of list/object rows, issue 20), so calling it again is the upgrade."""
        typed = check_typed_fields(filter_fields, covering_fields)
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('metamedia_pgvector_catalog'))"))
            collection = self.get_collection(name, conn)
            changed = [
                f for f, t in typed.items() if f in collection.typed and collection.typed[f].kind != t.kind
            ]
            if changed:
                raise Conflict(
                    f"fields {changed} are already indexed with another kind; drop and recreate the collection"
                )
            wanted = {
                f: dataclasses.replace(
                    t, covering=t.covering or (f in collection.typed and collection.typed[f].covering)
                )
                for f, t in typed.items()
            }
            new = {f: t for f, t in wanted.items() if collection.typed.get(f) != t}
            every = {**collection.typed, **wanted}
            present = set(
                conn.execute(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = :t"),
                    {"t": collection.table.name},
                ).scalars()
            )
            if new or not expected_indexes(collection.table.name, every) <= present:
                # idempotent DDL for every typed field: adds what an older layout lacks
                collection.add_typed_columns(conn, every, analyze=bool(new))
            if new:
                conn.execute(
                    update(pg_collections)
                    .where(pg_collections.c.name == name)
                    .values(config=_catalog_json(collection.config, collection.typed))
                )
        return collection

    def get_collection(self, name: str, conn: Connection | None = None) -> PgCollection:
        query = select(pg_collections.c.config).where(pg_collections.c.name == name)
        if conn is None:
            with self.engine.connect() as own:
                raw = own.execute(query).scalar()
        else:
            raw = conn.execute(query).scalar()
        if raw is None:
            raise CollectionNotFound(f"no collection named {name!r}", {"name": name})
        config, typed = _from_catalog(raw)
        return PgCollection(self.engine, config, self.pgvector, self.searches, typed)

    def has_collection(self, name: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(select(pg_collections.c.name).where(pg_collections.c.name == name)).first()
                is not None
            )

    def list_collections(self) -> list[CollectionConfig]:
        with self.engine.connect() as conn:
            rows = (
                conn.execute(select(pg_collections.c.config).order_by(pg_collections.c.name)).scalars().all()
            )
        return [_from_catalog(r)[0] for r in rows]

    def drop_collection(self, name: str) -> None:
        collection = self.get_collection(name)
        with self.engine.begin() as conn:
            collection.table.drop(conn)
            conn.execute(delete(pg_collections).where(pg_collections.c.name == name))

    def describe(self, name: str) -> dict[str, Any]:
        """Config, point count, table and index sizes, and the pgvector version."""
        collection = self.get_collection(name)
        with self.engine.connect() as conn:
            sizes = conn.execute(
                text("SELECT pg_table_size(CAST(:t AS regclass)), pg_indexes_size(CAST(:t AS regclass))"),
                {"t": collection._quoted},
            ).one()
        count = collection.count()
        return {
            "config": dataclasses.asdict(collection.config),
            "filter_fields": {f: t.kind for f, t in collection.typed.items()},
            "covering_fields": sorted(f for f, t in collection.typed.items() if t.covering),
            "count": count,
            "table_bytes": int(sizes[0]),
            "index_bytes": int(sizes[1]),
            "bytes_per_vector": 4 * collection.config.dim,
            "pgvector_version": self.pgvector.version_text,
            "iterative_scan": self.pgvector.iterative_scan,
        }

    def close(self) -> None:
        self.searches.close()
        self.engine.dispose()


def _catalog_json(config: CollectionConfig, typed: Mapping[str, TypedField]) -> str:
    """The catalog row: the CollectionConfig plus the typed filter fields and the covering ones
    (both absent before issue 20)."""
    return json.dumps(
        {
            **dataclasses.asdict(config),
            "filter_fields": {f: t.kind for f, t in typed.items()},
            "covering_fields": sorted(f for f, t in typed.items() if t.covering),
        }
    )


def _from_catalog(raw: str) -> tuple[CollectionConfig, dict[str, TypedField]]:
    data = json.loads(raw)
    fields = data.pop("filter_fields", None) or {}
    covering = data.pop("covering_fields", None) or []
    return CollectionConfig(**data), check_typed_fields(fields, covering)
