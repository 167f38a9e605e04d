"""Contract of the pgvector collection, checked against numpy exact search and the embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from metamedia.errors import (
    BackendUnavailable,
    CollectionNotFound,
    Conflict,
    DimensionMismatch,
    InvalidFilter,
    InvalidInput,
    NotFound,
)
from metamedia.store.postgres import make_pg_engine
from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.base import Hit
from metamedia.vectors_pg import PgVectorDB
from metamedia.vectors_pg.searchconn import APPLICATION_NAME, SearchConnections
from tests.pgfixtures import start_pg_server, stop_pg_server

pytestmark = pytest.mark.postgres
DIM, N = 24, 2000


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((30, DIM)).astype(np.float32)
    return (centers[rng.integers(0, 30, n)] + 0.35 * rng.standard_normal((n, DIM))).astype(np.float32)


def payload(i: int) -> dict[str, object]:
    p: dict[str, object] = {
        "bucket": i % 100,
        "genres": ["Drama" if i % 3 else "War", f"g{i % 7}"],
        "flag": i % 2 == 0,
    }
    if i % 5:
        p["title"] = f"Star number {i}" if i % 11 == 0 else f"movie {i}"
    return p


@pytest.fixture
def pgdb(pg_url: str) -> Iterator[PgVectorDB]:
    db = PgVectorDB(make_pg_engine(pg_url))
    yield db
    db.close()


def exact(data: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, metric: str) -> list[int]:
    if metric == "cosine":
        d = -(data / np.linalg.norm(data, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    elif metric == "dot":
        d = -(data @ q)
    elif metric == "l2":
        d = np.linalg.norm(data - q, axis=1)
    else:
        d = np.abs(data - q).sum(axis=1)
    return [int(ids[i]) for i in np.argsort(d, kind="stable")[:k]]


def test_detects_pgvector_and_reports_sizes(pgdb: PgVectorDB) -> None:
    assert pgdb.pgvector.version >= (0, 5)
    col = pgdb.create_collection(CollectionConfig(name="c", dim=DIM, metric="cosine"))
    col.upsert(list(range(10)), clustered(10))
    info = pgdb.describe("c")
    assert info["count"] == 10 and info["index_bytes"] > 0
    assert info["pgvector_version"] == pgdb.pgvector.version_text
    with pytest.raises(Conflict):
        pgdb.create_collection(CollectionConfig(name="c", dim=DIM))
    with pytest.raises(CollectionNotFound):
        pgdb.get_collection("nope")


def test_upsert_replace_and_delete_are_visible_at_once(pgdb: PgVectorDB) -> None:
    col = pgdb.create_collection(CollectionConfig(name="vis", dim=DIM, metric="l2"))
    data = clustered(200)
    col.upsert(np.arange(200), data, [payload(i) for i in range(200)])
    assert col.search(data[17], 1)[0].id == 17
    col.upsert([17], data[42:43] + 100.0, [{"moved": True}])
    assert col.search(data[17], 1)[0].id != 17
    assert col.get(17)[1] == {"moved": True}
    assert col.delete([42, 999]) == 1
    assert 42 not in [h.id for h in col.search(data[42], 5)]
    assert col.count() == 199
    with pytest.raises(NotFound):
        col.get(42)


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot", "manhattan"])
def test_scores_order_and_threshold_match_exact_search(pgdb: PgVectorDB, metric: str) -> None:
    col = pgdb.create_collection(
        CollectionConfig(name=f"m_{metric}", dim=DIM, metric=metric, ef_construction=64)
    )
    data = clustered(N, seed=1)
    ids = np.arange(N) * 3 + 1
    col.upsert(ids, data)
    q = clustered(1, seed=99)[0]
    hits = col.search(q, 10, ef=200)
    assert len(set(h.id for h in hits) & set(exact(data, ids, q, 10, metric))) >= 9
    scores = [h.score for h in hits]
    better_high = metric in ("cosine", "dot")
    assert scores == sorted(scores, reverse=better_high)
    if metric == "l2":  # Euclidean distance, not squared
        assert scores[0] == pytest.approx(float(np.linalg.norm(data[(hits[0].id - 1) // 3] - q)), rel=1e-4)
    cut = scores[4]
    kept = col.search(q, 10, ef=200, threshold=cut)
    assert kept and all((h.score >= cut) if better_high else (h.score <= cut) for h in kept)
    assert len(kept) < 10


@pytest.mark.parametrize("selectivity", [0.01, 0.1, 0.5])
def test_filtered_recall_and_never_fewer_than_k(pgdb: PgVectorDB, selectivity: float) -> None:
    col = pgdb.create_collection(
        CollectionConfig(name="f", dim=DIM, metric="cosine", exact_max=100, ef_construction=64)
    )
    data = clustered(N, seed=2)
    ids = np.arange(N)
    col.upsert(ids, data, [payload(i) for i in range(N)])
    buckets = int(selectivity * 100)
    flt = {"must": [{"field": "bucket", "range": {"lt": buckets}}]}
    allowed = np.array([i % 100 < buckets for i in range(N)])
    plan = col.explain(10, filter=flt)
    assert plan["matching"] == allowed.sum()
    queries = clustered(40, seed=5)
    found = 0
    for q in queries:
        hits = col.search(q, 10, filter=flt)
        assert len(hits) == 10
        assert all(h.id % 100 < buckets for h in hits)
        found += len({h.id for h in hits} & set(exact(data[allowed], ids[allowed], q, 10, "cosine")))
    assert found / (10 * len(queries)) >= 0.99


TYPED_FIELDS = {"bucket": "number", "title": "string", "genres": "string", "flag": "number"}


@pytest.mark.parametrize("typed", [False, True], ids=["jsonb", "typed-columns"])
def test_filters_select_the_same_points_as_the_embedded_store(
    pgdb: PgVectorDB, tmp_path: Path, typed: bool
) -> None:
    data = clustered(505, seed=3)
    payloads = [payload(i) for i in range(500)]
    # rows where a typed column is NULL and the JSONB fallback must decide
    payloads += [{"bucket": [7, 8]}, {"bucket": "7"}, {"bucket": 7.0, "title": ["movie 1", "x"]}, {}, {"bucket": None}]
    fields = TYPED_FIELDS if typed else None
    pg = pgdb.create_collection(CollectionConfig(name="same", dim=DIM, metric="l2"), filter_fields=fields)
    pg.upsert(np.arange(505), data, payloads)
    lite_db = VectorDB(create_engine(f"sqlite:///{tmp_path}/v.db"), tmp_path)
    lite = lite_db.create_collection(CollectionConfig(name="same", dim=DIM, metric="l2"))
    lite.upsert(np.arange(505), data, payloads)
    filters = [
        {"must": [{"field": "bucket", "eq": 7}]},
        {"must": [{"field": "bucket", "in": [7, 8, 9.0]}]},
        {"must": [{"field": "bucket", "range": {"gte": 5, "lt": 9}}]},
        {"must_not": [{"field": "bucket", "range": {"lt": 50}}]},
        {"must_not": [{"field": "title", "eq": "movie 1"}]},
        {"must": [{"field": "title", "in": ["movie 1", "movie 2", "Star number 11"]}]},
        {"must": [{"field": "bucket", "in": [7, "7"]}]},
        {"should": [{"field": "bucket", "eq": 3}, {"field": "title", "eq": "movie 4"}]},
        {"must": [{"field": "genres", "in": ["War"]}]},
        {"must": [{"field": "genres", "eq": "g3"}], "must_not": [{"field": "flag", "eq": True}]},
        {"must": [{"field": "title", "contains": "STAR"}]},
        {"must": [{"field": "title", "exists": False}]},
        {"should": [{"field": "bucket", "eq": 7}, {"must": [{"field": "$id", "range": {"gte": 490}}]}]},
        {"must": [{"field": "bucket", "eq": 1.0}]},
        {"must": [{"field": "flag", "eq": 1}]},  # booleans are not numbers: nothing matches
    ]
    q = data[0]
    for flt in filters:
        pg_ids = {h.id for h in pg.search(q, 505, filter=flt)}
        lite_ids = {h.id for h in lite.search(q, 505, filter=flt)}
        assert pg_ids == lite_ids, flt
    assert pgdb.describe("same")["filter_fields"] == (fields or {})
    assert not pg.search(q, 5, filter=filters[-1])
    lite_db.close()


def test_bad_input_raises_named_errors_and_changes_nothing(pgdb: PgVectorDB) -> None:
    col = pgdb.create_collection(CollectionConfig(name="bad", dim=DIM))
    col.upsert([1, 2], clustered(2))
    bad_nan = clustered(1)
    bad_nan[0, 3] = np.nan
    with pytest.raises(DimensionMismatch):
        col.upsert([3], np.zeros((1, DIM + 1), dtype=np.float32))
    with pytest.raises(InvalidInput):
        col.upsert([3], bad_nan)
    with pytest.raises(InvalidInput):
        col.upsert([3, 3], clustered(2))
    with pytest.raises(InvalidFilter):
        col.search(clustered(1)[0], 5, filter={"must": [{"field": "x", "near": 1}]})
    with pytest.raises(InvalidFilter):  # a hostile field name is data, not SQL
        col.search(
            clustered(1)[0], 5, filter={"must": [{"field": 'x"); DROP TABLE mmv_bad; --', "eq": 1}], "x": 1}
        )
    assert (
        col.search(clustered(1)[0], 5, filter={"must": [{"field": "a'); DROP TABLE mmv_bad; --", "eq": 1}]})
        == []
    )
    assert col.count() == 2
    with pytest.raises(InvalidInput):
        pgdb.create_collection(CollectionConfig(name="q", dim=DIM, precision="int8"))


def test_search_recovers_by_itself_after_a_server_restart() -> None:
    server = start_pg_server()  # a server of its own: the restart must not disturb other tests
    try:
        db = PgVectorDB(make_pg_engine(server.url("postgres")))
        col = db.create_collection(CollectionConfig(name="rs", dim=DIM, metric="cosine"))
        data = clustered(300, seed=6)
        col.upsert(np.arange(300), data, [payload(i) for i in range(300)])
        flt = {"must": [{"field": "bucket", "eq": 3}]}
        before = (col.search(data[7], 5), col.search(data[8], 5, filter=flt))
        server.restart()  # kills the pooled search connections
        after = (col.search(data[7], 5), col.search(data[8], 5, filter=flt))
        assert after == before and before[0][0].id == 7
        assert all(h.id % 100 == 3 for h in after[1]) and len(after[1]) == 3
        db.close()
    finally:
        stop_pg_server(server)


def test_concurrent_searches_share_a_bounded_set_of_connections(pgdb: PgVectorDB, pg_url: str) -> None:
    col = pgdb.create_collection(CollectionConfig(name="many", dim=DIM, metric="l2"))
    data = clustered(500, seed=7)
    col.upsert(np.arange(500), data)
    expected = [col.search(q, 5) for q in data[:40]]
    seen: list[int] = []
    watcher = make_pg_engine(pg_url)

    def search_all(offset: int) -> list[list[Hit]]:
        return [col.search(q, 5) for q in data[offset : offset + 40]]

    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(search_all, 0) for _ in range(16)]
        while not all(f.done() for f in futures):
            with watcher.connect() as conn:
                seen.append(
                    conn.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"),
                        {"a": APPLICATION_NAME},
                    ).scalar_one()
                )
        results = [f.result() for f in futures]
    watcher.dispose()
    assert all(r == expected for r in results)
    assert 1 <= max(seen) <= pgdb.searches.max_size


def test_filtered_search_stays_exact_when_statistics_are_stale(pgdb: PgVectorDB) -> None:
    col = pgdb.create_collection(CollectionConfig(name="stale", dim=DIM, metric="cosine", exact_max=50))
    data = clustered(2200, seed=8)
    col.upsert(np.arange(200), data[:200], [payload(i) for i in range(200)])
    with pgdb.engine.begin() as conn:
        conn.execute(text("ANALYZE mmv_stale"))  # statistics now say 200 rows
    col.upsert(np.arange(200, 2200), data[200:], [payload(i) for i in range(200, 2200)])
    flt = {"must": [{"field": "bucket", "range": {"lt": 10}}]}  # 10%: exact, under 20% of the table
    plan = col.explain(10, filter=flt)
    assert plan["matching"] == 220 and abs(plan["total"] - 2200) < 2200 * 0.2
    assert plan["plan"] == "exact"
    allowed = np.array([i % 100 < 10 for i in range(2200)])
    ids = np.arange(2200)
    for q in clustered(10, seed=9):
        hits = col.search(q, 10, filter=flt)
        assert [h.id for h in hits] == exact(data[allowed], ids[allowed], q, 10, "cosine")


def test_search_pool_is_bounded_and_reports_an_unreachable_server(pg_url: str, tmp_path: Path) -> None:
    engine = make_pg_engine(pg_url)
    with pytest.raises(BackendUnavailable, match="pgvector extension is not created"):
        SearchConnections(engine).run(lambda s: None)
    PgVectorDB(engine)  # creates the extension
    pool = SearchConnections(engine, max_size=1, wait_s=0.2)
    with pool.connection() as held:
        assert held.conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(BackendUnavailable, match="no search connection free"):
            pool.run(lambda s: s.conn.execute("SELECT 1").fetchone())
    assert pool.run(lambda s: s.conn.execute("SELECT 2").fetchone()) == (2,)
    assert pool.open_count == 1
    pool.close()
    engine.dispose()
    nowhere = make_pg_engine(f"postgresql://nobody@/nothing?host={tmp_path}")
    with pytest.raises(BackendUnavailable, match="not reachable"):
        SearchConnections(nowhere).run(lambda s: s.conn.execute("SELECT 1").fetchone())
    nowhere.dispose()


def test_typed_filter_columns_migrate_an_existing_collection(pgdb: PgVectorDB, pg_url: str) -> None:
    col = pgdb.create_collection(CollectionConfig(name="mig", dim=DIM, metric="cosine", exact_max=50))
    data = clustered(3000, seed=11)
    col.upsert(np.arange(3000), data, [payload(i) for i in range(3000)])
    flt = {"must": [{"field": "bucket", "range": {"lt": 10}}]}
    queries = clustered(5, seed=12)
    before = [[h.id for h in col.search(q, 10, filter=flt)] for q in queries]
    assert col.explain(10, filter=flt)["typed_columns"] is False
    with pytest.raises(InvalidInput):
        pgdb.index_filter_fields("mig", {"bucket; DROP TABLE x": "number"})
    with pytest.raises(InvalidInput):
        pgdb.index_filter_fields("mig", {"bucket": "date"})
    migrated = pgdb.index_filter_fields("mig", {"bucket": "number"})
    pgdb.index_filter_fields("mig", {"bucket": "number"})  # again: nothing to do
    with pytest.raises(Conflict):
        pgdb.index_filter_fields("mig", {"bucket": "string"})
    # a fresh catalog reader sees the typed field, and answers are unchanged
    other = PgVectorDB(make_pg_engine(pg_url))
    try:
        reopened = other.get_collection("mig")
        plan = reopened.explain(10, filter=flt)
        assert plan["typed_columns"] is True and plan["matching"] == 300
        assert abs(plan["estimated_matching"] - 300) < 150  # btree statistics, not a guess
        assert [[h.id for h in reopened.search(q, 10, filter=flt)] for q in queries] == before
    finally:
        other.close()
    # new rows fill the generated column too; a wide filter goes to HNSW by the estimate alone
    migrated.upsert([5000], clustered(1, seed=13), [{"bucket": 3}])
    assert 5000 in {h.id for h in migrated.search(clustered(1, seed=13)[0], 3, filter=flt)}
    wide = {"must": [{"field": "bucket", "range": {"lt": 90}}]}
    assert migrated.explain(10, filter=wide)["plan"] == "hnsw"
    hits = migrated.search(queries[0], 10, filter=wide)
    assert len(hits) == 10 and all(h.id == 5000 or h.id % 100 < 90 for h in hits)
