"""Planner contract: recall@10 >= 0.99 vs exact at every selectivity, never fewer than k, ef honoured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
import sqlalchemy

from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.synthetic import ClusteredDataset

N, DIM, CLUSTERS = 25_000, 32, 200


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    dataset = ClusteredDataset(DIM, CLUSTERS, seed=11)
    points, cluster = dataset.sample(N, seed=12)
    queries, query_cluster = dataset.sample(40, seed=13)
    tmp = tmp_path_factory.mktemp("planner")
    db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp / 's.db'}"), tmp)
    col = db.create_collection(CollectionConfig(name="p", dim=DIM, metric="cosine", ef_construction=100))
    rng = np.random.default_rng(0)
    bucket = rng.permutation(N) % 10_000  # uniform over 0..9999, independent of position
    for start in range(0, N, 10_000):
        part = slice(start, start + 10_000)
        col.upsert(
            np.arange(N)[part],
            points[part],
            [{"bucket": int(b), "cluster": int(c)} for b, c in zip(bucket[part], cluster[part], strict=True)],
        )
    yield col, points, bucket, cluster, queries, query_cluster
    faiss.omp_set_num_threads(before)


def recall_vs_exact(col, points, allowed: np.ndarray, queries: np.ndarray, flt: dict | None) -> float:
    found = 0
    total = 0
    allowed_ids = np.flatnonzero(allowed)
    for query in queries:
        scores = points[allowed_ids] @ query
        truth = set(allowed_ids[np.argsort(-scores, kind="stable")[:10]].tolist())
        hits = col.search(query, k=10, filter=flt)
        assert len(hits) == min(10, len(allowed_ids))
        assert all(allowed[h.id] for h in hits)
        found += len({h.id for h in hits} & truth)
        total += len(truth)
    return found / total


@pytest.mark.parametrize("selectivity", [0.001, 0.01, 0.1, 0.5, 1.0])
def test_recall_at_every_selectivity(clustered, selectivity: float) -> None:
    col, points, bucket, _, queries, _ = clustered
    cut = int(selectivity * 10_000)
    flt = None if selectivity == 1.0 else {"must": [{"field": "bucket", "range": {"lt": cut}}]}
    allowed = bucket < cut
    plan = col.explain(filter=flt)
    assert plan["allowed"] == allowed.sum()
    assert plan["kind"] == ("exact" if allowed.sum() <= 2000 else "graph")
    assert recall_vs_exact(col, points, allowed, queries, flt) >= 0.99


@pytest.mark.parametrize("share", [0.1, 0.3])
def test_recall_when_the_filter_excludes_the_query_neighbourhood(clustered, share: float) -> None:
    """Hard case for a filtered graph walk: allowed points lie in clusters away from the query."""
    col, points, _, cluster, queries, query_cluster = clustered
    rng = np.random.default_rng(1)
    chosen = rng.permutation(CLUSTERS)
    excluded = set(query_cluster.tolist())
    picked, size = [], 0
    for c in chosen.tolist():
        if c in excluded:
            continue
        picked.append(c)
        size += int((cluster == c).sum())
        if size >= share * N:
            break
    flt = {"must": [{"field": "cluster", "in": picked}]}
    allowed = np.isin(cluster, picked)
    assert col.explain(filter=flt)["kind"] == "graph"
    assert recall_vs_exact(col, points, allowed, queries, flt) >= 0.99


@pytest.mark.parametrize("matching", [1, 9, 10, 11, 25])
def test_never_fewer_than_k_when_k_match(clustered, matching: int) -> None:
    col, _, bucket, _, queries, _ = clustered
    ids = np.flatnonzero(bucket < 5)[:matching]
    flt = {"must": [{"field": "$id", "in": ids.tolist()}]}
    for query in queries[:5]:
        hits = col.search(query, k=10, filter=flt)
        assert len(hits) == min(10, matching)
        assert {h.id for h in hits} <= set(ids.tolist())


def test_graph_path_falls_back_rather_than_return_fewer(clustered) -> None:
    col, _, bucket, _, queries, _ = clustered
    # 50% allowed (graph path) with k far above what a small ef walk returns.
    flt = {"must": [{"field": "bucket", "range": {"lt": 5000}}]}
    hits = col.search(queries[0], k=3000, ef=16, filter=flt)
    assert len(hits) == 3000
    assert all(bucket[h.id] < 5000 for h in hits)


def test_larger_ef_does_more_work_and_finds_more(tmp_path: Path) -> None:
    """Per-query ef reaches faiss: more distance computations, and more recall on a hard set."""
    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(2)
    # Hard set: unstructured 64-d vectors and a sparse graph (m=4).
    points = rng.standard_normal((6000, 64)).astype(np.float32)
    queries = rng.standard_normal((40, 64)).astype(np.float32)
    db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp_path / 's.db'}"), tmp_path)
    col = db.create_collection(CollectionConfig(name="hard", dim=64, metric="l2", m=4, ef_construction=20))
    col.upsert(np.arange(6000), points)
    truth = [set(np.argsort(((points - q) ** 2).sum(axis=1))[:10].tolist()) for q in queries]

    def run(ef: int) -> tuple[int, float]:
        faiss.cvar.hnsw_stats.reset()
        found = sum(
            len({h.id for h in col.search(q, k=10, ef=ef)} & t) for q, t in zip(queries, truth, strict=True)
        )
        return int(faiss.cvar.hnsw_stats.ndis), found / (10 * len(queries))

    work_small, recall_small = run(10)
    work_large, recall_large = run(400)
    assert work_large > 3 * work_small
    assert recall_large > recall_small + 0.1
