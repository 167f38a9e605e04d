"""Concurrency: readers never see half a batch, and keep searching while compaction rebuilds."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import faiss
import numpy as np
import sqlalchemy

from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.synthetic import ClusteredDataset

DIM = 16
BATCH = 50


def open_db(tmp: Path) -> VectorDB:
    return VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp / 'store.db'}"), tmp)


def test_readers_see_whole_batches_only(tmp_path: Path) -> None:
    faiss.omp_set_num_threads(1)
    col = open_db(tmp_path).create_collection(
        CollectionConfig(name="c", dim=DIM, ef_construction=40, exact_max=200)
    )
    ds = ClusteredDataset(DIM, 10, seed=0)
    query = ds.sample(1, seed=99)[0][0]
    everything = {"must": [{"field": "batch", "range": {"gte": 0}}]}
    stop = threading.Event()
    problems: list[str] = []
    observations = [0]

    def reader() -> None:
        while not stop.is_set():
            hits = col.search(query, k=10_000, filter=everything, ef=4096)
            seen = np.array([h.id for h in hits])
            batches, counts = np.unique(seen // BATCH, return_counts=True)
            if (counts != BATCH).any():
                problems.append(f"partial batches {batches[counts != BATCH].tolist()}")
            observations[0] += 1

    def writer() -> None:
        for batch in range(60):
            ids = np.arange(batch * BATCH, (batch + 1) * BATCH)
            col.upsert(ids, ds.sample(BATCH, seed=batch)[0], [{"batch": batch}] * BATCH)
            if batch % 4 == 3:
                col.delete(np.arange((batch - 2) * BATCH, (batch - 1) * BATCH))  # a whole earlier batch
            if batch % 10 == 9:  # replace a whole batch at once
                col.upsert(ids, ds.sample(BATCH, seed=500 + batch)[0], [{"batch": batch}] * BATCH)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for thread in readers:
        thread.start()
    writer()
    stop.set()
    for thread in readers:
        thread.join()
    assert not problems, problems[:5]
    assert observations[0] > 10
    assert col.count() % BATCH == 0
    assert col.verify()["ok"]


def test_searches_keep_running_while_compaction_rebuilds(tmp_path: Path) -> None:
    faiss.omp_set_num_threads(1)
    col = open_db(tmp_path).create_collection(CollectionConfig(name="c", dim=DIM, ef_construction=200))
    ds = ClusteredDataset(DIM, 50, seed=1)
    points = ds.sample(12_000, seed=2)[0]
    col.upsert(np.arange(10_000), points[:10_000])
    col.upsert(np.arange(10_000, 12_000), points[10_000:])
    col.delete(np.arange(0, 12_000, 5))
    queries = ds.sample(20, seed=3)[0]
    expected = [[h.id for h in col.search(q, k=5, ef=200)] for q in queries]
    finished: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        i = 0
        while not stop.is_set():
            col.search(queries[i % len(queries)], k=5)
            finished.append(time.monotonic())
            i += 1

    thread = threading.Thread(target=reader)
    thread.start()
    while not finished:
        time.sleep(0.001)
    started = time.monotonic()
    stats = col.compact_in_background().result()
    ended = time.monotonic()
    stop.set()
    thread.join()
    # Ordering, not speed: searches completed strictly inside the rebuild window.
    assert sum(started < t < ended for t in finished) >= 5
    assert stats["removed_labels"] == 12_000 // 5
    after = [[h.id for h in col.search(q, k=5, ef=200)] for q in queries]
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(after, expected, strict=True)])
    assert overlap >= 0.98
