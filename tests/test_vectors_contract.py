"""Contract suite of the vector collections, run against every metric x precision.

The interface (`metamedia.ports.VectorCollection` / `VectorDatabase`) is checked over both
backends: the embedded faiss store (every metric x precision) and pgvector on a real PostgreSQL
(float32, the precision it offers). Snapshots, compaction and on-disk files are faiss-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
import sqlalchemy

from metamedia.errors import (
    CollectionNotFound,
    Conflict,
    DimensionMismatch,
    InvalidFilter,
    InvalidInput,
    InvalidQuery,
    NotFound,
)
from metamedia.ports import VectorCollection, VectorDatabase
from metamedia.store.postgres import make_pg_engine
from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.base import MAX_BATCH
from metamedia.vectors.synthetic import ClusteredDataset
from metamedia.vectors_pg import PgVectorDB

DIM = 32
COMBOS = [
    (metric, precision)
    for metric in ("cosine", "l2", "dot", "manhattan")
    for precision in ("float32", "float16", "int8", "pq")
    if metric != "manhattan" or precision == "float32"
]
IDS = [f"{m}-{p}" for m, p in COMBOS]
# (backend, metric, precision): pgvector stores float32 only
CASES = [("faiss", m, p) for m, p in COMBOS] + [("pgvector", m, p) for m, p in COMBOS if p == "float32"]
CASE_IDS = [f"{b}-{m}-{p}" for b, m, p in CASES]


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread() -> Iterator[None]:
    # OpenMP spin-waiting makes 2 threads slower than 1 on a shared 2-core machine.
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def make_db(tmp: Path) -> VectorDB:
    return VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp / 'store.db'}"), tmp)


def open_db(backend: str, tmp: Path, request: pytest.FixtureRequest) -> VectorDatabase:
    """The vector database of `backend`: faiss in `tmp`, or pgvector in a fresh PostgreSQL database."""
    if backend == "faiss":
        return make_db(tmp)
    return PgVectorDB(make_pg_engine(request.getfixturevalue("pg_url")))


def test_both_backends_satisfy_the_collection_interface(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for backend in ("faiss", "pgvector"):
        (tmp_path / backend).mkdir()
        db = open_db(backend, tmp_path / backend, request)
        col = db.create_collection(config_for("cosine", "float32"))
        assert isinstance(col, VectorCollection)
        db.close()


def config_for(metric: str, precision: str, name: str = "c") -> CollectionConfig:
    # exact_max=50 so the graph path (not the exact planner path) is what these tests exercise.
    return CollectionConfig(
        name=name,
        dim=DIM,
        metric=metric,
        precision=precision,
        ef_construction=80,
        train_size=600,
        exact_max=50,
    )


def exact_scores(metric: str, query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Brute-force oracle: scores as documented (similarity or true distance)."""
    if metric == "cosine":
        query = query / np.linalg.norm(query)
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors @ query
    if metric == "dot":
        return vectors @ query
    if metric == "l2":
        return np.sqrt(((vectors - query) ** 2).sum(axis=1))
    return np.abs(vectors - query).sum(axis=1)


def exact_top(metric: str, query: np.ndarray, ids: np.ndarray, vectors: np.ndarray, k: int) -> list[int]:
    scores = exact_scores(metric, query, vectors)
    order = np.argsort(-scores if metric in ("cosine", "dot") else scores, kind="stable")[:k]
    return ids[order].tolist()


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    dataset = ClusteredDataset(DIM, 40, seed=7)
    points, _ = dataset.sample(1500, seed=8)
    queries, _ = dataset.sample(30, seed=9)
    # Non-unit scale so dot and l2 differ from cosine.
    scale = np.random.default_rng(3).uniform(0.5, 2.0, (len(points), 1)).astype(np.float32)
    return points * scale, queries


@pytest.mark.parametrize(("backend", "metric", "precision"), CASES, ids=CASE_IDS)
def test_search_agrees_with_brute_force(
    tmp_path: Path, request: pytest.FixtureRequest, data, backend: str, metric: str, precision: str
) -> None:
    points, queries = data
    ids = np.arange(10_000, 10_000 + len(points))
    col = open_db(backend, tmp_path, request).create_collection(config_for(metric, precision))
    col.upsert(ids, points)
    if backend == "faiss":
        assert col.explain()["kind"] == "graph"
    stored = points / np.linalg.norm(points, axis=1, keepdims=True) if metric == "cosine" else points
    found = 0
    for query in queries:
        hits = col.search(query, k=10)
        assert len(hits) == 10
        truth = exact_top(metric, query, ids, points, 10)
        found += len({h.id for h in hits} & set(truth))
        # Scores are the exact documented scores of the returned points, best first.
        expected = exact_scores(metric, query, stored[[h.id - 10_000 for h in hits]])
        np.testing.assert_allclose([h.score for h in hits], expected, rtol=2e-3, atol=2e-3)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=metric in ("cosine", "dot"))
    assert found / (10 * len(queries)) >= 0.95
    batch = col.search_batch(queries[:5], k=10)
    assert [[h.id for h in row] for row in batch] == [
        [h.id for h in col.search(q, k=10)] for q in queries[:5]
    ]


@pytest.mark.parametrize(("backend", "metric", "precision"), CASES, ids=CASE_IDS)
def test_upsert_replaces_and_delete_removes_immediately(
    tmp_path: Path, request: pytest.FixtureRequest, data, backend: str, metric: str, precision: str
) -> None:
    points, _ = data
    points = points[:800]
    col = open_db(backend, tmp_path, request).create_collection(config_for(metric, precision))
    col.upsert(np.arange(len(points)), points, [{"n": i} for i in range(len(points))])
    assert col.count() == len(points)

    def visible(point_id: int, query: np.ndarray) -> list[float]:
        return [h.score for h in col.search(query, k=1, filter={"must": [{"field": "$id", "eq": point_id}]})]

    replacement = -points[10]
    col.upsert([10], replacement[None, :], [{"n": -1}])
    assert col.count() == len(points)
    vector, payload = col.get(10)
    assert payload == {"n": -1}
    expected = replacement / np.linalg.norm(replacement) if metric == "cosine" else replacement
    np.testing.assert_allclose(vector, expected, rtol=1e-6)
    assert visible(10, points[10]) == pytest.approx(
        list(exact_scores(metric, points[10], expected[None, :])), abs=2e-3
    )
    if metric != "dot":  # a point is its own nearest neighbour except under the inner product
        assert col.search(replacement, k=1)[0].id == 10
        assert col.search(points[11], k=1)[0].id == 11

    assert col.delete([11, 12, 99_999]) == 2
    assert col.count() == len(points) - 2
    assert visible(11, points[11]) == []
    assert 11 not in {h.id for h in col.search(points[11], k=20)}
    with pytest.raises(NotFound):
        col.get(11)
    with pytest.raises(NotFound):
        col.get_vectors([1, 11])
    assert col.get_vectors([2, 1]).shape == (2, DIM)
    assert 11 not in col.ids().tolist() and 10 in col.ids().tolist()
    col.upsert([11], points[11][None, :])
    assert len(visible(11, points[11])) == 1


@pytest.mark.parametrize(("backend", "metric", "precision"), CASES, ids=CASE_IDS)
def test_threshold_keeps_only_scores_on_the_good_side(
    tmp_path: Path, request: pytest.FixtureRequest, data, backend: str, metric: str, precision: str
) -> None:
    points, queries = data
    col = open_db(backend, tmp_path, request).create_collection(config_for(metric, precision))
    col.upsert(np.arange(len(points)), points)
    for query in queries[:5]:
        hits = col.search(query, k=20)
        limit = hits[7].score
        kept = col.search(query, k=20, threshold=limit)
        similar = metric in ("cosine", "dot")
        assert kept == [h for h in hits if (h.score >= limit if similar else h.score <= limit)]
        assert 8 <= len(kept) < 20 or hits[19].score == limit


@pytest.mark.parametrize(("metric", "precision"), COMBOS, ids=IDS)
def test_snapshot_and_reopen_give_identical_results(
    tmp_path: Path, data, metric: str, precision: str
) -> None:
    points, queries = data
    db = make_db(tmp_path)
    col = db.create_collection(config_for(metric, precision))
    col.upsert(np.arange(1000), points[:1000], [{"year": 1900 + i % 120} for i in range(1000)])
    col.delete(np.arange(0, 1000, 7))
    col.upsert(np.arange(0, 50), points[1000:1050], [{"year": 1960} for _ in range(50)])
    flt = {"must": [{"field": "year", "range": {"gte": 1950}}]}

    def results(collection, ef=None):
        return [collection.search(q, k=10, ef=ef) for q in queries] + [
            collection.search(q, k=10, ef=ef, filter=flt) for q in queries
        ]

    col.snapshot()
    before = results(col)
    db.close(snapshot=False)
    del db, col
    db = make_db(tmp_path)
    reopened = db.get_collection("c")
    assert results(reopened) == before  # same graph, same labels: identical at any ef

    # Writes after the snapshot are replayed from the store on open. The store keeps the latest
    # state of each id, so the replayed graph may link differently: compare exhaustive searches.
    reopened.upsert(np.arange(1000, 1450), points[1050:1500], [{"year": 2000} for _ in range(450)])
    reopened.delete([1001, 3])
    before = results(reopened, ef=2000)
    count = reopened.count()
    db.close(snapshot=False)
    again = make_db(tmp_path).get_collection("c")
    assert again.count() == count == 1000 - len(range(0, 1000, 7)) + len(range(0, 50, 7)) + 450 - 2
    assert [[h.id for h in r] for r in results(again, ef=2000)] == [[h.id for h in r] for r in before]
    report = again.verify()
    assert report["ok"], str(report)


@pytest.mark.parametrize(("metric", "precision"), COMBOS, ids=IDS)
def test_compaction_keeps_results(tmp_path: Path, data, metric: str, precision: str) -> None:
    points, queries = data
    db = make_db(tmp_path)
    col = db.create_collection(config_for(metric, precision))
    col.upsert(np.arange(700), points[:700])
    col.upsert(np.arange(0, 700, 3), points[700:934][: len(range(0, 700, 3))])
    col.delete(np.arange(1, 700, 10))
    # ef >= number of labels: the graph walk visits every point, so results are exact before and after.
    before = [col.search(q, k=10, ef=1200) for q in queries]
    described = col.describe()
    assert described["tombstones"] > 0
    stats = col.compact()
    assert stats["removed_labels"] == described["tombstones"]
    assert col.describe()["tombstones"] == 0
    after = [col.search(q, k=10, ef=1200) for q in queries]
    assert [[h.id for h in r] for r in after] == [[h.id for h in r] for r in before]
    for a, b in zip(after, before, strict=True):
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-5, atol=1e-5)
    assert col.verify()["ok"]
    db.close()
    assert [
        [h.id for h in r]
        for r in (make_db(tmp_path).get_collection("c").search(q, k=10, ef=1200) for q in queries)
    ] == [[h.id for h in r] for r in before]


@pytest.mark.parametrize(("backend", "metric", "precision"), CASES, ids=CASE_IDS)
def test_bad_input_raises_named_error_and_changes_nothing(
    tmp_path: Path, request: pytest.FixtureRequest, data, backend: str, metric: str, precision: str
) -> None:
    points, queries = data
    db = open_db(backend, tmp_path, request)
    col = db.create_collection(config_for(metric, precision))
    col.upsert(np.arange(700), points[:700])

    def observed() -> tuple[object, ...]:
        version = getattr(col, "version", None)  # faiss counts its writes; pgvector has no counter
        return (col.count(), version, col.ids().tolist(), [col.search(q, k=5) for q in queries[:3]])

    state = observed()
    nan = points[:2].copy()
    nan[1, 3] = np.nan
    inf = points[:2].copy()
    inf[0, 0] = np.inf
    bad_calls = [
        (DimensionMismatch, lambda: col.upsert([1000, 1001], points[:2, :-1])),
        (InvalidInput, lambda: col.upsert([1000, 1001], nan)),
        (InvalidInput, lambda: col.upsert([1000, 1001], inf)),
        (InvalidInput, lambda: col.upsert([1000, 1000], points[:2])),
        (InvalidInput, lambda: col.upsert([1000, 1001], points[:3])),
        (InvalidInput, lambda: col.upsert([1000, 1001], points[:2], [{"x": {"nested": 1}}, {}])),
        (InvalidInput, lambda: col.upsert([1000, 1001], points[:2], [{"x": float("nan")}, {}])),
        (InvalidInput, lambda: col.upsert(["a", "b"], points[:2])),
        (InvalidInput, lambda: col.upsert(np.arange(MAX_BATCH + 1), np.ones((MAX_BATCH + 1, DIM)))),
        (DimensionMismatch, lambda: col.search(queries[0][:-1])),
        (InvalidInput, lambda: col.search(np.full(DIM, np.nan))),
        (InvalidFilter, lambda: col.search(queries[0], filter={"must": [{"field": "x", "between": [1, 2]}]})),
        (InvalidFilter, lambda: col.search(queries[0], filter={"must": {"field": "x", "eq": 1}})),
        (InvalidQuery, lambda: col.search(queries[0], k=0)),
        (InvalidQuery, lambda: col.search(queries[0], k=10_001)),
        (InvalidQuery, lambda: col.search(queries[0], ef=5000)),
        (InvalidQuery, lambda: col.search(queries[0], threshold=float("nan"))),
        (CollectionNotFound, lambda: db.get_collection("nope")),
        (CollectionNotFound, lambda: db.drop_collection("nope")),
        (Conflict, lambda: db.create_collection(config_for(metric, precision))),
    ]
    if metric == "cosine":
        bad_calls.append((InvalidInput, lambda: col.upsert([1000], np.zeros((1, DIM)))))
    for error, call in bad_calls:
        with pytest.raises(error) as caught:
            call()
        assert caught.value.message
        assert observed() == state


@pytest.mark.parametrize(
    "settings",
    [
        {"dim": 0},
        {"dim": 4097},
        {"metric": "hamming"},
        {"precision": "int4"},
        {"metric": "manhattan", "precision": "pq"},
        {"metric": "manhattan", "precision": "int8"},
        {"precision": "pq", "pq_m": 5},
        {"name": "../escape"},
        {"m": 1},
        {"ef_search": 0},
    ],
)
def test_impossible_configs_are_refused_at_create(settings: dict) -> None:
    values = {"name": "ok", "dim": 32, **settings}
    with pytest.raises(InvalidInput):
        CollectionConfig(**values)


@pytest.mark.parametrize("backend", ["faiss", "pgvector"])
def test_catalog_create_list_describe_drop(
    tmp_path: Path, request: pytest.FixtureRequest, data, backend: str
) -> None:
    points, _ = data
    faiss_only = backend == "faiss"
    db = open_db(backend, tmp_path, request)
    precision = "int8" if faiss_only else "float32"
    db.create_collection(CollectionConfig(name="a", dim=DIM, precision=precision, train_size=300))
    db.create_collection(CollectionConfig(name="b", dim=DIM, metric="l2"))
    db.get_collection("a").upsert(np.arange(500), points[:500], [{"genre": "x"}] * 500)
    assert [c.name for c in db.list_collections()] == ["a", "b"]
    assert db.has_collection("a") and not db.has_collection("nope")
    described = db.describe("a")
    assert described["count"] == 500
    if faiss_only:
        assert described["graph_ready"]
        assert described["bytes_per_vector"]["codes"] == DIM  # one byte per dimension
        assert db.describe("b")["bytes_per_vector"]["codes"] == DIM * 4  # float32
        assert described["payload_fields"] == ["genre"]
    db.drop_collection("a")
    assert [c.name for c in db.list_collections()] == ["b"]
    if faiss_only:
        assert not (tmp_path / "vectors" / "a").exists()
    with pytest.raises(CollectionNotFound):
        db.get_collection("a")
    db.close()
    again = make_db(tmp_path) if faiss_only else open_db(backend, tmp_path, request)
    assert [c.name for c in again.list_collections()] == ["b"]
