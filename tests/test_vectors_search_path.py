"""The lean single-query path and the array answers give what the general path gives.

`Collection.search` answers a well-formed unfiltered float32 query without building a plan or
validating through numpy copies; `search_arrays` answers without a Python object per hit. Both
must agree with `search_batch` (the general path) on ids and scores, respect deleted points, and
refuse bad input with the same named errors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy

from metamedia.errors import DimensionMismatch, InvalidInput, InvalidQuery
from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.synthetic import ClusteredDataset

DIM = 24


def make(tmp: Path, metric: str = "cosine", **config: object) -> tuple[VectorDB, object]:
    db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp / 'store.db'}"), tmp)
    col = db.create_collection(
        CollectionConfig(name="c", dim=DIM, metric=metric, ef_construction=80, exact_max=50, **config)  # type: ignore[arg-type]
    )
    return db, col


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    ds = ClusteredDataset(DIM, 20, seed=3)
    points = ds.sample(1200, seed=4)[0] * 3.0  # not unit length: cosine must normalise
    return points.astype(np.float32), ds.sample(20, seed=5)[0].astype(np.float32) * 2.0


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot"])
def test_single_search_and_arrays_match_the_batch_path(tmp_path: Path, data, metric: str) -> None:
    points, queries = data
    db, col = make(tmp_path, metric)
    ids = np.arange(5_000, 5_000 + len(points))
    col.upsert(ids, points)
    batch = col.search_batch(queries, k=7)
    arrays = col.search_arrays(queries, k=7)
    assert arrays.ids.shape == arrays.scores.shape == (len(queries), 7)
    assert arrays.ids.dtype == np.int64 and arrays.scores.dtype == np.float32
    for i, query in enumerate(queries):
        single = col.search(query, k=7)
        assert [h.id for h in single] == [h.id for h in batch[i]] == arrays.ids[i].tolist()
        np.testing.assert_allclose([h.score for h in single], [h.score for h in batch[i]], rtol=1e-6)
        np.testing.assert_allclose(arrays.scores[i], [h.score for h in batch[i]], rtol=1e-6)
        one = col.search_arrays(query, k=7)
        assert one.ids.tolist() == [arrays.ids[i].tolist()]
        assert type(single[0]).__name__ == "Hit" and single[0].id == single[0][0]
    # Unit-length queries (what embedding models return) are searched as they are, on both paths.
    unit = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    unit_batch = col.search_arrays(unit, k=7)
    if metric == "cosine":  # the same directions as the scaled queries
        assert unit_batch.ids.tolist() == arrays.ids.tolist()
    for i, query in enumerate(unit):
        assert [h.id for h in col.search(query, k=7)] == unit_batch.ids[i].tolist()
        np.testing.assert_allclose([h.score for h in col.search(query, k=7)], unit_batch.scores[i], rtol=1e-6)
    # A float64 list takes the general path and answers the same.
    assert [h.id for h in col.search(queries[0].astype(np.float64).tolist(), k=7)] == arrays.ids[0].tolist()
    db.close()


def test_deleted_and_replaced_points_never_come_back(tmp_path: Path, data) -> None:
    points, queries = data
    db, col = make(tmp_path)
    col.upsert(np.arange(len(points)), points)
    first = [h.id for h in col.search(queries[0], k=5)]
    col.delete(first[:2])
    col.upsert([first[2]], [-points[first[2]]])  # replaced: now points away from the query
    after = [h.id for h in col.search(queries[0], k=5)]
    assert not set(first[:3]) & set(after) and len(after) == 5
    assert col.search_arrays(queries[0], k=5).ids[0].tolist() == after
    db.close()


def test_arrays_pad_short_rows_with_nan_scores(tmp_path: Path, data) -> None:
    points, queries = data
    db, col = make(tmp_path)
    col.upsert([-1, 7, 9], points[:3], [{"g": "a"}, {"g": "a"}, {"g": "b"}])
    found = col.search_arrays(queries[:2], k=5)
    assert found.ids.shape == (2, 5)
    assert np.isnan(found.scores[:, 3:]).all() and not np.isnan(found.scores[:, :3]).any()
    assert sorted(found.ids[0, :3].tolist()) == [-1, 7, 9]  # -1 is a real id here: the NaN tells
    only_a = col.search_arrays(queries[:1], k=5, filter={"must": [{"field": "g", "eq": "a"}]})
    assert sorted(only_a.ids[0, :2].tolist()) == [-1, 7] and np.isnan(only_a.scores[0, 2:]).all()
    assert len(col.search(queries[0], k=5)) == 3
    db.close()


def test_bad_queries_get_the_named_errors_on_every_path(tmp_path: Path, data) -> None:
    points, queries = data
    db, col = make(tmp_path)
    col.upsert(np.arange(len(points)), points)
    nan = queries[0].copy()
    nan[3] = np.nan
    for search in (col.search, col.search_arrays):
        with pytest.raises(InvalidInput):
            search(nan, k=3)
        with pytest.raises(InvalidInput):
            search(np.zeros(DIM, dtype=np.float32), k=3)  # no direction under cosine
        with pytest.raises(DimensionMismatch):
            search(queries[0][:-1], k=3)
        for bad_k in (0, -1, True, 2.5, 10_001):
            with pytest.raises(InvalidQuery):
                search(queries[0], k=bad_k)  # type: ignore[arg-type]
        for bad_ef in (0, True, 5000):
            with pytest.raises(InvalidQuery):
                search(queries[0], k=3, ef=bad_ef)
    huge = np.full(DIM, 1e30, dtype=np.float32)  # finite, but its squared norm overflows float32
    assert len(col.search(huge, k=3)) == 3
    strided = np.ascontiguousarray(np.repeat(queries[0], 2))[::2]  # not contiguous
    assert [h.id for h in col.search(strided, k=3)] == [h.id for h in col.search(queries[0], k=3)]
    db.close()
