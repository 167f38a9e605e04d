"""Every table metamedia declares comes from the Alembic migrations, on SQLite and a real PostgreSQL.

The tables the layers declare are found by importing every metamedia module, so a new layer's
table that no revision creates fails here. Databases made the old way (each layer running
`metadata.create_all`) upgrade to the newest revision with their rows; a downgrade undoes it.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, Table, func, insert, inspect, select
from sqlalchemy import table as table_named
from sqlalchemy.engine import Engine

import metamedia
from metamedia.api.keys import KeyStore, api_keys
from metamedia.bandit.log import arms_table, decisions_table, load_posteriors, outcomes_table
from metamedia.memory.schema import causal_nodes, create_memory_tables
from metamedia.recommend.storage import create_tables, interactions, preferences, users
from metamedia.store import schema as catalog
from metamedia.store.lexical import is_lexical_object
from metamedia.store.migrate import known_tables, open_engine, table_checksum
from metamedia.store.migrations import (
    BASELINE,
    VERSION_TABLE,
    current_revision,
    downgrade_schema,
    head_revision,
    newest_revision_file,
    upgrade_schema,
)
from metamedia.vectors.config import CollectionConfig
from metamedia.vectors.schema import collections, points
from metamedia.vectors.store import PointStore

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
NOT_COPIED = {"pgvector_collections", "metamedia_migration_progress", "vector_changes"}  # see store/migrate.py


@pytest.fixture(scope="module")
def declared() -> MetaData:
    """Every table any metamedia module declares at import time, in one MetaData."""
    union = MetaData()
    seen: set[int] = set()
    for module in pkgutil.walk_packages(metamedia.__path__, "metamedia."):
        if module.name.endswith("__main__") or ".migrations" in module.name:
            continue
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, MetaData) and id(value) not in seen:
                seen.add(id(value))
                for table in value.tables.values():
                    table.to_metadata(union)
    return union


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'schema.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    eng = open_engine(url)
    yield eng
    eng.dispose()


def tables_in(engine: Engine) -> set[str]:
    return {name for name in inspect(engine).get_table_names() if not is_lexical_object(name)}


def schema_diff(engine: Engine, metadata: MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match `metadata`."""
    with engine.connect() as conn:
        opts = {"version_table": VERSION_TABLE, "include_name": lambda name, *_: not is_lexical_object(name)}
        context = MigrationContext.configure(conn, opts=opts)
        return list(compare_metadata(context, metadata))


def test_the_layers_declare_the_tables_of_every_part_of_the_store(declared: MetaData) -> None:
    expected = {
        "items", "rec_users", "rec_interactions", "rec_preferences", "vector_points", "api_keys",
        "bandit_decisions", "memory_strategies", "memory_episodes", "pgvector_collections",
    }  # fmt: skip
    assert expected <= set(declared.tables)


def test_upgrade_from_empty_creates_every_declared_table(engine: Engine, declared: MetaData) -> None:
    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()
    # upgrade_schema's fast path trusts the numbered chain: the newest file must be the head.
    assert newest_revision_file() == head_revision()
    assert tables_in(engine) == set(declared.tables) | {VERSION_TABLE}
    inspector = inspect(engine)
    for table in declared.tables.values():
        columns = {
            c["name"]: c["nullable"]
            for c in inspector.get_columns(table.name)
            if not is_lexical_object(c["name"])
        }
        assert columns == {c.name: c.nullable for c in table.columns}, table.name
    assert schema_diff(engine, declared) == []


def test_the_migrate_tool_copies_every_table_parents_first(declared: MetaData) -> None:
    order = [t.name for t in known_tables()]
    assert set(order) == set(declared.tables) - NOT_COPIED
    assert len(order) == len(set(order))
    for position, table in enumerate(known_tables()):
        for fk in table.foreign_keys:
            assert order.index(fk.column.table.name) < position, (table.name, fk.target_fullname)


def _fill(engine: Engine) -> None:
    """A few rows in the catalog and in each other layer, written with plain inserts."""
    with engine.begin() as conn:
        conn.execute(
            insert(catalog.items).values(
                id=7, media_type="movie", title="Heat", genres=["Crime"], keywords=[], source="t",
                content_hash="h", created_at=1.0, updated_at=1.0, tmdb_id=949,
            )
        )  # fmt: skip
        conn.execute(insert(users).values(id="ana", created_at=1.0, last_seen=2.0))
        conn.execute(
            insert(interactions).values(
                user_id="ana", item_id=7, kind="rating", value=4.5, scale="five", strength=0.8,
                context={"device": "tv"}, idempotency_key="k1", created_at=2.0,
            )
        )  # fmt: skip
        conn.execute(
            insert(preferences).values(
                user_id="ana", dim=2, vector=b"\x00\x00\x80?\x00\x00\x00\x00", evidence=1.0,
                confidence=0.5, genre_affinity={"Crime": 0.8}, genre_evidence={"Crime": 1.0},
                genre_watches={}, counts={"rating": 1}, updated_at=2.0,
            )
        )  # fmt: skip
        conn.execute(
            insert(api_keys).values(
                id="0123456789ab", name="ci", secret_sha256="0" * 64, scopes="read", created_at=1.0
            )
        )
        conn.execute(
            insert(arms_table).values(
                name="ease", active=True, prior_successes=1.0, prior_failures=1.0, added_at=1.0
            )
        )
        conn.execute(
            insert(decisions_table).values(
                id="d1", created_at=1.0, user_id="ana", variant="bandit", policy_version="v1",
                context={}, bucket="all", eligible_arms=["ease"], probabilities={"ease": 1.0},
                arm="ease", propensity=1.0, served_items=[7],
            )
        )  # fmt: skip
        conn.execute(insert(outcomes_table).values(decision_id="d1", kind="click", value=1.0, created_at=2.0))
        conn.execute(insert(causal_nodes).values(event_type="genre", label="Crime", attrs={}, created_at=1.0))
        config = json.dumps(CollectionConfig(name="media", dim=2, metric="cosine").to_dict())
        conn.execute(insert(collections).values(name="media", config=config, version=3))
        conn.execute(
            insert(points).values(
                collection="media", point_id=7, version=3, deleted=False, vector=b"\x00" * 8
            )
        )


def _checksums(
    engine: Engine, metadata: MetaData, columns: dict[str, set[str]] | None = None
) -> dict[str, tuple[int, str]]:
    """Checksums over the columns each table has now (or over `columns`, to compare with an earlier
    state after later revisions added columns)."""
    present = tables_in(engine)
    inspector = inspect(engine)
    out = {}
    for t in metadata.sorted_tables:
        if t.name not in present:
            continue
        names = (columns or {}).get(t.name) or {c["name"] for c in inspector.get_columns(t.name)}
        subset = Table(t.name, MetaData(), *[c._copy() for c in t.columns if c.name in names])
        out[t.name] = table_checksum(engine, subset)
    return out


def _columns(engine: Engine) -> dict[str, set[str]]:
    inspector = inspect(engine)
    return {name: {c["name"] for c in inspector.get_columns(name)} for name in tables_in(engine)}


@pytest.mark.parametrize("catalog_at", [BASELINE, None], ids=["catalog-at-0001", "no-migrations-yet"])
def test_a_database_created_the_old_way_upgrades_keeping_its_rows(
    engine: Engine, declared: MetaData, catalog_at: str | None
) -> None:
    if catalog_at is None:
        catalog.metadata.create_all(engine)
    else:
        upgrade_schema(engine, catalog_at)
    others = [t for t in declared.sorted_tables if t.name not in catalog.metadata.tables]
    declared.create_all(engine, tables=[t for t in others if t.name not in NOT_COPIED])
    _fill(engine)
    before, columns = _checksums(engine, declared), _columns(engine)
    assert before["rec_interactions"][0] == 1 and before["api_keys"][0] == 1

    upgrade_schema(engine)

    assert current_revision(engine) == head_revision()
    assert _checksums(engine, declared, columns).items() >= before.items()
    assert tables_in(engine) == set(declared.tables) | {VERSION_TABLE}
    assert schema_diff(engine, declared) == []
    # the layers open on the upgraded database and read what was there
    assert [k.id for k in KeyStore(engine).list()] == ["0123456789ab"]
    with engine.connect() as conn:
        assert load_posteriors(conn).priors == {"ease": (1.0, 1.0)}
    [(config, version)] = PointStore(engine).catalog()
    assert (config.name, config.dim, version) == ("media", 2, 3)


def test_an_adopted_table_gets_the_indexes_it_is_missing(engine: Engine) -> None:
    upgrade_schema(engine, BASELINE)
    users.create(engine)
    interactions.create(engine)
    with engine.begin() as conn:
        for index in list(interactions.indexes):
            index.drop(conn)
    upgrade_schema(engine)
    names = {ix["name"] for ix in inspect(engine).get_indexes("rec_interactions")}
    assert {"ix_rec_interactions_item", "ix_rec_interactions_user_time"} <= names


def test_downgrade_to_the_catalog_then_upgrade_again(engine: Engine, declared: MetaData) -> None:
    upgrade_schema(engine)
    _fill(engine)
    downgrade_schema(engine, BASELINE)
    assert current_revision(engine) == BASELINE
    assert tables_in(engine) == set(catalog.metadata.tables) | {VERSION_TABLE}
    with engine.connect() as conn:
        assert conn.execute(select(catalog.items.c.title)).scalars().all() == ["Heat"]

    upgrade_schema(engine)
    assert current_revision(engine) == head_revision()
    assert tables_in(engine) == set(declared.tables) | {VERSION_TABLE}
    assert schema_diff(engine, declared) == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(users)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(catalog.items)).scalar_one() == 1


@pytest.mark.parametrize(
    "open_layer",
    [KeyStore, PointStore, create_tables, create_memory_tables],
    ids=["api-keys", "vectors", "recommend", "memory"],
)
def test_each_layer_opened_on_an_empty_database_brings_it_to_head(
    engine: Engine, declared: MetaData, open_layer: Any
) -> None:
    open_layer(engine)
    assert current_revision(engine) == head_revision()
    assert tables_in(engine) == set(declared.tables) | {VERSION_TABLE}


def test_concurrent_openers_in_threads_migrate_once(engine: Engine, declared: MetaData) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            upgrade_schema(engine)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(table_named(VERSION_TABLE))).scalar_one()
    assert rows == 1 and current_revision(engine) == head_revision()
    assert tables_in(engine) == set(declared.tables) | {VERSION_TABLE}
