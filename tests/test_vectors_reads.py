"""Reads are not bound by the write batch limit (the demo catalog alone is larger than one batch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import sqlalchemy

from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.base import MAX_BATCH


def test_get_vectors_accepts_more_ids_than_one_write_batch(tmp_path: Path) -> None:
    db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp_path}/v.db"), tmp_path)
    col = db.create_collection(CollectionConfig(name="big", dim=4, metric="l2"))
    n = MAX_BATCH + 500
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 4)).astype(np.float32)
    col.upsert(list(range(1, MAX_BATCH + 1)), vectors[:MAX_BATCH])
    col.upsert(list(range(MAX_BATCH + 1, n + 1)), vectors[MAX_BATCH:])
    got = col.get_vectors(np.arange(1, n + 1))
    assert got.shape == (n, 4)
    assert np.allclose(got, vectors)
    db.close()
