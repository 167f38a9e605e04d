"""CompactCollection (IVF-PQ + float16 re-rank file): recall, filters, reopen, deletes, bad input.

Small sizes (a few thousand points, 16 lists); bench/million_bench.py measures the 1M case and
is run here at a small N so the script itself stays working.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from metamedia.errors import DimensionMismatch, InvalidFilter, InvalidInput, NotFound
from metamedia.vectors import CompactCollection
from metamedia.vectors.synthetic import ClusteredDataset

DIM, N = 32, 6000
REPO = Path(__file__).resolve().parents[1]


def exact_ids(data: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> set[int]:
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    scores = normed @ (query / np.linalg.norm(query))
    return set(ids[np.argsort(-scores)[:k]].tolist())


@pytest.fixture(scope="module")
def dataset() -> tuple[np.ndarray, np.ndarray]:
    data = ClusteredDataset(DIM, 40, seed=3).sample(N, seed=4)[0]
    queries = ClusteredDataset(DIM, 40, seed=3).sample(30, seed=5)[0]
    return data, queries


def build(path: Path, data: np.ndarray, **options: int) -> CompactCollection:
    settings = {"nlist": 16, "pq_m": 8, "nprobe": 4, "train_size": 2000, "exact_max": 200, **options}
    col = CompactCollection.create(path, dim=DIM, fields=("bucket", "year"), **settings)
    ids = np.arange(len(data), dtype=np.int64) * 3 + 7  # ids are not labels
    for start in range(0, len(data), 1500):
        part = ids[start : start + 1500]
        col.add(part, data[start : start + 1500], {"bucket": part % 100, "year": 1950 + part % 70})
    return col


def test_recall_filters_and_reopen(tmp_path: Path, dataset: tuple[np.ndarray, np.ndarray]) -> None:
    data, queries = dataset
    ids = np.arange(N, dtype=np.int64) * 3 + 7
    col = build(tmp_path / "c", data)
    assert col.trained and col.count == N
    found = sum(len({h.id for h in col.search(q, 10)[0]} & exact_ids(data, ids, q, 10)) for q in queries)
    assert found / (10 * len(queries)) >= 0.95
    # 1%: answered exactly from the re-rank file; 20%: IVF lists with a selector
    for spec, allowed in (
        ({"bucket": 4}, ids % 100 == 4),
        ({"bucket": (0, 19)}, ids % 100 < 20),
        ({"bucket": [1, 2, 3], "year": (1950, 1990)}, np.isin(ids % 100, [1, 2, 3]) & (1950 + ids % 70 <= 1990)),
    ):
        hits_found = 0
        for q in queries:
            hits = col.search(q, 10, filter=spec)[0]
            assert len(hits) == 10
            assert all(allowed[(h.id - 7) // 3] for h in hits)
            hits_found += len({h.id for h in hits} & exact_ids(data[allowed], ids[allowed], q, 10))
        assert hits_found / (10 * len(queries)) >= 0.95, spec
    col.save()
    before = [[h.id for h in row] for row in col.search(queries, 10)]
    reopened = CompactCollection.open(tmp_path / "c")
    assert [[h.id for h in row] for row in reopened.search(queries, 10)] == before
    vector, columns = reopened.get(int(ids[5]))
    assert columns == {"bucket": int(ids[5] % 100), "year": int(1950 + ids[5] % 70)}
    assert np.allclose(vector, data[5] / np.linalg.norm(data[5]), atol=1e-3)


def test_untrained_is_exact_and_unsaved_points_are_dropped_on_reopen(
    tmp_path: Path, dataset: tuple[np.ndarray, np.ndarray]
) -> None:
    data, queries = dataset
    col = CompactCollection.create(tmp_path / "c", dim=DIM, nlist=16, pq_m=8, train_size=5000)
    col.add(np.arange(300), data[:300])
    assert not col.trained
    assert {h.id for h in col.search(queries[0], 10)[0]} == exact_ids(data[:300], np.arange(300), queries[0], 10)
    col.save()
    col.add(np.arange(300, 400), data[300:400])  # not saved
    reopened = CompactCollection.open(tmp_path / "c")
    assert reopened.count == 300
    with pytest.raises(NotFound):
        reopened.get(350)


def test_delete_hides_points_and_small_filters_never_come_back_short(
    tmp_path: Path, dataset: tuple[np.ndarray, np.ndarray]
) -> None:
    data, queries = dataset
    col = build(tmp_path / "c", data)
    first = [h.id for h in col.search(queries[0], 5)[0]]
    assert col.delete(first + [123456789]) == 5
    assert not {h.id for h in col.search(queries[0], 50)[0]} & set(first)
    assert col.count == N - 5
    # a filter matching 3 points returns exactly those 3
    few = col.search(queries[1], 10, filter={"bucket": 7, "year": (1950, 1960)})[0]
    ids = np.arange(N) * 3 + 7
    expected = {int(i) for i in ids if i % 100 == 7 and 1950 + i % 70 <= 1960} - set(first)
    assert {h.id for h in few} == expected
    assert col.search(queries[1], 10, filter={"bucket": 1000})[0] == []


def test_bad_input_is_refused_and_changes_nothing(tmp_path: Path, dataset: tuple[np.ndarray, np.ndarray]) -> None:
    data, queries = dataset
    col = CompactCollection.create(tmp_path / "c", dim=DIM, fields=("bucket",), nlist=16, pq_m=8, train_size=2000)
    col.add([1, 2], data[:2], {"bucket": [1, 2]})
    with pytest.raises(InvalidInput):
        col.add([2, 3], data[2:4], {"bucket": [1, 2]})  # id 2 exists
    with pytest.raises(DimensionMismatch):
        col.add([3], np.zeros((1, DIM + 1)), {"bucket": [1]})
    with pytest.raises(InvalidInput):
        col.add([3], data[3:4])  # column missing
    with pytest.raises(InvalidInput):
        col.add([3], [[float("nan")] * DIM], {"bucket": [1]})
    with pytest.raises(InvalidFilter):
        col.search(queries[0], 5, filter={"genre": 1})
    with pytest.raises(InvalidFilter):
        col.search(queries[0], 5, filter={"bucket": "one"})
    with pytest.raises(InvalidInput):
        col.search(queries[0], 0)
    with pytest.raises(InvalidInput):
        CompactCollection.create(tmp_path / "c", dim=DIM)  # already there
    with pytest.raises(InvalidInput):
        CompactCollection.create(tmp_path / "d", dim=30, pq_m=8)  # 8 does not divide 30
    with pytest.raises(NotFound):
        CompactCollection.open(tmp_path / "missing")
    assert col.count == 2 and {h.id for h in col.search(queries[0], 5)[0]} == {1, 2}


@pytest.mark.slow
def test_million_bench_runs_at_small_n(tmp_path: Path) -> None:
    out = tmp_path / "million.json"
    command = [sys.executable, str(REPO / "bench" / "million_bench.py"), "--n", "6000", "--queries", "20"]
    command += ["--nlist", "16", "--train-size", "3000", "--dir", str(tmp_path), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    result = json.loads(out.read_text())
    assert result["serve"]["none"]["recall_at_10"] >= 0.9
    assert result["serve"]["1%"]["short_answers"] == 0
    assert result["goals"]["peak_rss_mb_build_or_serve"] > 0
