"""Payload columns saved in binary form with a snapshot reload to the same filters and payloads."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy

from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.fullvectors import file_sha256
from metamedia.vectors.snapshot import COLUMN_FILES, TEXTS_FILE
from metamedia.vectors.synthetic import ClusteredDataset

DIM = 16
FILTERS = [
    {"must": [{"field": "n", "eq": 7}]},
    {"must": [{"field": "n", "range": {"gte": 10, "lt": 90}}]},
    {"must": [{"field": "tags", "in": ["b", "été"]}]},
    {"must": [{"field": "flag", "eq": True}]},
    {"must": [{"field": "note", "exists": False}]},
    {"must": [{"field": "title", "contains": "FILM 1"}]},
    {"must": [{"field": "day", "range": {"gte": "2020-01-05"}}]},
    {"must": [{"field": "odd", "eq": "x\x00"}]},
    {"should": [{"field": "ratio", "range": {"lt": 0.2}}, {"field": "flag", "eq": False}], "must_not": [{"field": "n", "in": [1, 2, 3]}]},
]


def payload(i: int) -> dict:
    out: dict = {
        "n": i,
        "ratio": (i % 10) / 10,
        "tags": ["a", "b" if i % 2 else "été"],
        "flag": i % 3 == 0,
        "title": f"Film {i}",
        "day": f"2020-01-{1 + i % 28:02d}",
    }
    if i % 4 == 0:
        out["note"] = None
    if i % 5 == 0:
        out["odd"] = "x\x00"
    return out if i % 17 else {}


def open_db(tmp: Path) -> VectorDB:
    return VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp / 'store.db'}"), tmp)


def answers(db: VectorDB, queries: np.ndarray) -> list:
    col = db.get_collection("c")
    found = [[h.id for h in col.search(q, k=20, filter=f)] for f in FILTERS for q in queries]
    return found + [col.get(i)[1] for i in (0, 1, 17, 20, 150)]


def build(tmp: Path) -> tuple[VectorDB, np.ndarray]:
    db = open_db(tmp)
    ds = ClusteredDataset(DIM, 8, seed=3)
    col = db.create_collection(CollectionConfig(name="c", dim=DIM, ef_construction=40, exact_max=10_000))
    col.upsert(np.arange(300), ds.sample(300, seed=1)[0], [payload(i) for i in range(300)])
    col.delete([3, 4])
    col.upsert([5], ds.sample(1, seed=9)[0], [{"n": 5, "title": "replaced"}])
    return db, ds.sample(4, seed=2)[0]


def test_binary_columns_reload_to_the_same_answers_and_keep_growing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db, queries = build(tmp_path)
    db.snapshot_all()
    before = answers(db, queries)
    db.close()
    snapshot = tmp_path / "vectors" / "c" / "snapshots" / (tmp_path / "vectors" / "c" / "CURRENT").read_text()
    assert all((snapshot / name).is_file() for name in (*COLUMN_FILES, TEXTS_FILE))
    with caplog.at_level(logging.WARNING, logger="metamedia.vectors"):
        reopened = open_db(tmp_path)
        assert answers(reopened, queries) == before
    assert not caplog.records  # loaded from the snapshot, not rebuilt from the store
    col = reopened.get_collection("c")
    col.upsert([1000], queries[:1], [{"n": 7, "tags": ["b"], "title": "Film 1000"}])  # appended after load
    assert 1000 in [h.id for h in col.search(queries[0], k=300, filter=FILTERS[0])]
    assert col.get(1000)[1]["title"] == "Film 1000" and col.get(20)[1] == payload(20)
    assert col.verify()["ok"]


def test_snapshot_without_binary_columns_still_loads(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Snapshots written before the binary columns existed rebuild them from payloads.jsonl."""
    db, queries = build(tmp_path)
    db.snapshot_all()
    before = answers(db, queries)
    db.close()
    folder = tmp_path / "vectors" / "c"
    snapshot = folder / "snapshots" / (folder / "CURRENT").read_text()
    manifest = json.loads((snapshot / "manifest.json").read_text())
    for name in (*COLUMN_FILES, TEXTS_FILE):
        (snapshot / name).unlink()
        del manifest["files"][name]
        manifest["stamps"].pop(name)
    (snapshot / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="metamedia.vectors"):
        assert answers(open_db(tmp_path), queries) == before
    assert not caplog.records


def test_snapshot_with_texts_inside_the_column_meta_still_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The first binary form kept vocabulary texts in payload_columns.json (no payload_texts.json)."""
    db, queries = build(tmp_path)
    db.snapshot_all()
    before = answers(db, queries)
    db.close()
    folder = tmp_path / "vectors" / "c"
    snapshot = folder / "snapshots" / (folder / "CURRENT").read_text()
    manifest = json.loads((snapshot / "manifest.json").read_text())
    meta = json.loads((snapshot / "payload_columns.json").read_text())
    texts = json.loads((snapshot / TEXTS_FILE).read_text())
    for info, field_texts in zip(meta["fields"], texts, strict=True):
        info["texts"] = field_texts
    (snapshot / "payload_columns.json").write_text(json.dumps(meta))
    (snapshot / TEXTS_FILE).unlink()
    del manifest["files"][TEXTS_FILE], manifest["stamps"]  # written before stamps: full sha256 on open
    manifest["files"]["payload_columns.json"] = file_sha256(snapshot / "payload_columns.json")
    (snapshot / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="metamedia.vectors"):
        assert answers(open_db(tmp_path), queries) == before
    assert not caplog.records
