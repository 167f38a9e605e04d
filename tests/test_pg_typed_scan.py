"""Exact filtered scans on typed columns (issue 20): the typed-only scan (and the covering index
that makes it index-only) gives the embedded store's answers, before and after a row stores a
filtered field as a list, and an older collection's layout is brought up to date by the migration."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from metamedia.errors import InvalidInput
from metamedia.store.postgres import make_pg_engine
from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors_pg import PgVectorDB

pytestmark = pytest.mark.postgres
DIM = 16
FILTERS: list[dict[str, Any]] = [
    {"must": [{"field": "bucket", "range": {"lt": 10}}]},
    {"must": [{"field": "bucket", "range": {"gte": 60, "lt": 75}}]},
    {"must_not": [{"field": "bucket", "range": {"lt": 50}}]},
    {"must": [{"field": "bucket", "in": [3, 4, 70]}], "must_not": [{"field": "title", "eq": "movie 3"}]},
    {"should": [{"field": "bucket", "eq": 3}, {"field": "title", "eq": "movie 70"}]},
]


def vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def payload(i: int) -> dict[str, Any]:
    return {"bucket": i % 100, "title": f"movie {i % 100}"} if i % 9 else {"bucket": i % 100}


@pytest.fixture
def pgdb(pg_url: str) -> Iterator[PgVectorDB]:
    db = PgVectorDB(make_pg_engine(pg_url))
    yield db
    db.close()


def index_names(pgdb: PgVectorDB, table: str) -> set[str]:
    with pgdb.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE tablename = :t"), {"t": table}
        ).scalars()
        return set(rows)


def same_answers(pg: Any, lite: Any, queries: np.ndarray) -> None:
    for flt in FILTERS:
        for q in queries:
            assert [h.id for h in pg.search(q, 10, filter=flt)] == [
                h.id for h in lite.search(q, 10, filter=flt)
            ], flt
        assert {h.id for h in pg.search(queries[0], 1000, filter=flt)} == {
            h.id for h in lite.search(queries[0], 1000, filter=flt)
        }, flt


def test_typed_only_scan_answers_like_the_embedded_store_until_a_list_arrives(
    pgdb: PgVectorDB, tmp_path: Path
) -> None:
    config = CollectionConfig(name="scan", dim=DIM, metric="l2", exact_max=2000)
    pg = pgdb.create_collection(
        config, filter_fields={"bucket": "number", "title": "string"}, covering_fields=["bucket"]
    )
    lite_db = VectorDB(create_engine(f"sqlite:///{tmp_path}/v.db"), tmp_path)
    lite = lite_db.create_collection(config)
    data = vectors(600, seed=1)
    payloads = [payload(i) for i in range(600)]
    payloads[5] = {"bucket": "7", "title": 12}  # other scalar types: never matched by typed conditions
    for col in (pg, lite):
        col.upsert(np.arange(600), data, payloads)
    queries = vectors(4, seed=2)
    plan = pg.explain(10, filter=FILTERS[0])
    assert plan["typed_only_scan"] is True and plan["covering"] == ["bucket"] and plan["plan"] == "exact"
    same_answers(pg, lite, queries)

    # a list value: the typed column cannot say whether it matches, so scans go back to the full filter
    odd = {"bucket": [3, 70], "title": ["movie 3", "x"]}
    for col in (pg, lite):
        col.upsert([600], vectors(1, seed=3), [odd])
    assert pg.explain(10, filter=FILTERS[2])["typed_only_scan"] is False
    same_answers(pg, lite, np.vstack([queries, vectors(1, seed=3)]))
    near_list = vectors(1, seed=3)[0]
    assert 600 in {h.id for h in pg.search(near_list, 3, filter=FILTERS[1])}  # 70 is in range
    assert 600 not in {h.id for h in pg.search(near_list, 600, filter=FILTERS[2])}  # 3 < 50 excludes it

    for col in (pg, lite):
        col.delete([600])
    assert pg.explain(10, filter=FILTERS[2])["typed_only_scan"] is True
    same_answers(pg, lite, queries)
    assert pgdb.describe("scan")["covering_fields"] == ["bucket"]
    with pytest.raises(InvalidInput, match="covering fields"):
        pgdb.create_collection(CollectionConfig(name="bad", dim=DIM), covering_fields=["bucket"])
    assert not pgdb.has_collection("bad")
    lite_db.close()


def test_migration_brings_an_older_typed_layout_up_to_date(pgdb: PgVectorDB, pg_url: str) -> None:
    config = CollectionConfig(name="old", dim=DIM, metric="cosine", exact_max=2000)
    col = pgdb.create_collection(config, filter_fields={"bucket": "number"})
    data = vectors(1500, seed=4)
    col.upsert(np.arange(1500), data, [payload(i) for i in range(1500)])
    before_indexes = index_names(pgdb, "mmv_old")
    odd_index = next(name for name in before_indexes if name.startswith("mmv_od_"))
    plain_index = next(name for name in before_indexes if name.startswith("mmv_ix_"))
    with pgdb.engine.begin() as conn:  # the layout before issue 20's typed-only scan: no partial index
        conn.execute(text(f'DROP INDEX "{odd_index}"'))
    queries = vectors(3, seed=5)
    before = [[h.id for h in col.search(q, 10, filter=flt)] for flt in FILTERS for q in queries]

    migrated = pgdb.index_filter_fields("old", {"bucket": "number"}, covering_fields=["bucket"])
    after_indexes = index_names(pgdb, "mmv_old")
    assert odd_index in after_indexes and plain_index not in after_indexes
    assert any(name.startswith("mmv_cv_") for name in after_indexes)
    pgdb.index_filter_fields("old", {"bucket": "number"})  # again, without covering: the covering index stays
    assert any(name.startswith("mmv_cv_") for name in index_names(pgdb, "mmv_old"))

    # nothing left to migrate: no DDL, so it neither waits for nor blocks a reader's open transaction
    with pgdb.engine.connect() as reader:
        reader.execute(text("SELECT count(*) FROM mmv_old"))  # holds ACCESS SHARE until rollback
        done = ThreadPoolExecutor(1).submit(pgdb.index_filter_fields, "old", {"bucket": "number"})
        assert done.result(timeout=20).typed["bucket"].covering
        reader.rollback()

    other = PgVectorDB(make_pg_engine(pg_url))  # a fresh catalog reader
    try:
        reopened = other.get_collection("old")
        assert reopened.explain(10, filter=FILTERS[0])["covering"] == ["bucket"]
        assert [
            [h.id for h in reopened.search(q, 10, filter=flt)] for flt in FILTERS for q in queries
        ] == before
        assert other.describe("old")["covering_fields"] == ["bucket"]
    finally:
        other.close()
    assert [[h.id for h in migrated.search(q, 10, filter=flt)] for flt in FILTERS for q in queries] == before
