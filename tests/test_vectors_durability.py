"""Durability: acknowledged writes survive kill -9, snapshots reload identically, backups verify,
verify/repair detect and fix drift, corrupt snapshots are rebuilt from the store."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest
import sqlalchemy

from metamedia.errors import InvalidInput
from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.fullvectors import sampled_ranges
from metamedia.vectors.schema import points as points_table
from metamedia.vectors.snapshot import SnapshotError
from metamedia.vectors.synthetic import ClusteredDataset

DIM = 24
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread() -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def open_db(tmp: Path) -> VectorDB:
    tmp.mkdir(parents=True, exist_ok=True)
    return VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp / 'store.db'}"), tmp)


def batch_vectors(batch: int) -> np.ndarray:
    return ClusteredDataset(DIM, 20, seed=1).sample(100, seed=1000 + batch)[0]


def run_child(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


WRITER = """
    import sys
    from pathlib import Path
    import faiss, numpy as np, sqlalchemy
    from metamedia.vectors import VectorDB
    from metamedia.vectors.synthetic import ClusteredDataset
    faiss.omp_set_num_threads(1)
    tmp = Path(sys.argv[1])
    col = VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp / 'store.db'}"), tmp).get_collection("k")
    batch = 0
    while True:
        vectors = ClusteredDataset(24, 20, seed=1).sample(100, seed=1000 + batch)[0]
        col.upsert(np.arange(batch * 100, batch * 100 + 100), vectors, [{"batch": batch}] * 100)
        print("U", batch, flush=True)
        if batch % 3 == 2:
            col.delete(np.arange(batch * 100, batch * 100 + 10))
            print("D", batch, flush=True)
        if batch == 4:
            col.snapshot()
        batch += 1
"""


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    db = open_db(tmp_path)
    db.create_collection(CollectionConfig(name="k", dim=DIM, metric="l2", ef_construction=40))
    db.close()
    child = run_child(WRITER, str(tmp_path))
    acked: list[tuple[str, int]] = []
    assert child.stdout is not None
    while len(acked) < 25:
        line = child.stdout.readline()
        assert line, child.stderr.read() if child.stderr else "writer died"
        kind, batch = line.split()
        acked.append((kind, int(batch)))
    child.kill()  # SIGKILL: no cleanup, no snapshot on close
    child.wait()

    col = open_db(tmp_path).get_collection("k")
    present = set(col.ids().tolist())
    for kind, batch in acked:
        ids = set(range(batch * 100, batch * 100 + 100))
        if kind == "U":
            assert ids - set(range(batch * 100, batch * 100 + 10)) <= present
        else:
            assert not (set(range(batch * 100, batch * 100 + 10)) & present)
    upserts = [b for k, b in acked if k == "U"]
    deletes = [b for k, b in acked if k == "D"]
    expected = 100 * len(upserts) - 10 * len(deletes)
    # The write in flight at the kill may or may not have committed, never half of it.
    assert col.count() in (expected, expected + 100, expected - 10)
    assert col.verify()["ok"]
    # Content equals the writes: a point's own vector finds it first.
    last = upserts[-1]
    query = batch_vectors(last)[50]
    assert col.search(query, k=1)[0].id == last * 100 + 50
    assert col.get(last * 100 + 50)[1] == {"batch": last}


SNAPSHOTTER = """
    import json, sys, time
    from pathlib import Path
    import faiss, numpy as np, sqlalchemy
    from metamedia.vectors import VectorDB, CollectionConfig
    from metamedia.vectors.synthetic import ClusteredDataset
    faiss.omp_set_num_threads(1)
    tmp = Path(sys.argv[1])
    db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{tmp / 'store.db'}"), tmp)
    ds = ClusteredDataset(24, 20, seed=1)
    results = {}
    for precision in ("float32", "pq"):
        col = db.create_collection(CollectionConfig(name=precision, dim=24, precision=precision, pq_m=6 if precision == "pq" else 0,
                                                    ef_construction=40, train_size=500, exact_max=10))
        col.upsert(np.arange(3000), ds.sample(3000, seed=5)[0], [{"g": i % 4} for i in range(3000)])
        col.delete(np.arange(0, 3000, 11))
        col.snapshot()
        queries = ds.sample(20, seed=6)[0]
        flt = {"must": [{"field": "g", "in": [1, 2]}]}
        results[precision] = [[(h.id, h.score) for h in col.search(q, k=10)] for q in queries] + [
            [(h.id, h.score) for h in col.search(q, k=10, filter=flt)] for q in queries]
    (tmp / "results.json").write_text(json.dumps(results))
    print("ready", flush=True)
    time.sleep(600)
"""


def test_snapshot_then_kill_9_then_load_gives_identical_results(tmp_path: Path) -> None:
    child = run_child(SNAPSHOTTER, str(tmp_path))
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip() == "ready", child.stderr.read() if child.stderr else ""
    child.kill()
    child.wait()
    before = json.loads((tmp_path / "results.json").read_text())
    db = open_db(tmp_path)
    queries = ClusteredDataset(DIM, 20, seed=1).sample(20, seed=6)[0]
    flt = {"must": [{"field": "g", "in": [1, 2]}]}
    for precision in ("float32", "pq"):
        col = db.get_collection(precision)
        after = [[[h.id, h.score] for h in col.search(q, k=10)] for q in queries] + [
            [[h.id, h.score] for h in col.search(q, k=10, filter=flt)] for q in queries
        ]
        assert after == before[precision]


def build(tmp: Path) -> tuple[VectorDB, np.ndarray]:
    db = open_db(tmp)
    ds = ClusteredDataset(DIM, 20, seed=2)
    a = db.create_collection(CollectionConfig(name="a", dim=DIM, ef_construction=40, exact_max=10))
    b = db.create_collection(
        CollectionConfig(name="b", dim=DIM, metric="l2", precision="int8", ef_construction=40, train_size=300)
    )
    a.upsert(
        np.arange(1500),
        ds.sample(1500, seed=3)[0],
        [{"n": i, "tags": ["x", str(i % 3)]} for i in range(1500)],
    )
    b.upsert(np.arange(800), ds.sample(800, seed=4)[0])
    a.delete([5, 6, 7])
    return db, ds.sample(10, seed=5)[0]


def results(db: VectorDB, queries: np.ndarray) -> list:
    return [[db.get_collection(n).search(q, k=8) for q in queries] for n in ("a", "b")]


def test_backup_restore_round_trip_with_equal_checksums(tmp_path: Path) -> None:
    db, queries = build(tmp_path / "live")
    before = results(db, queries)
    first = db.backup(tmp_path / "bk1")
    assert {e["config"]["name"] for e in first["collections"]} == {"a", "b"}
    with pytest.raises(InvalidInput):
        db.backup(tmp_path / "bk1")  # refuses to write into a non-empty folder

    db.get_collection("a").delete(np.arange(100))
    db.get_collection("b").upsert([5000], np.ones((1, DIM)))
    db.drop_collection("b")
    assert db.restore(tmp_path / "bk1") == {"restored": ["a", "b"]}
    assert results(db, queries) == before
    assert db.get_collection("a").count() == 1497 and db.get_collection("b").count() == 800
    assert db.verify("a")["ok"] and db.verify("b")["ok"]
    assert db.get_collection("a").get(10)[1] == {"n": 10, "tags": ["x", "1"]}

    second = db.backup(tmp_path / "bk2")
    assert [e["files"] for e in second["collections"]] == [e["files"] for e in first["collections"]]

    db.close()
    reopened = open_db(tmp_path / "live")
    assert results(reopened, queries) == before


def test_restore_refuses_a_corrupt_backup_and_changes_nothing(tmp_path: Path) -> None:
    db, queries = build(tmp_path / "live")
    db.backup(tmp_path / "bk")
    db.get_collection("a").delete(np.arange(50))
    before = results(db, queries)
    count = db.get_collection("a").count()
    target = tmp_path / "bk" / "a" / "points.npz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(InvalidInput) as caught:
        db.restore(tmp_path / "bk")
    assert "a/points.npz" in caught.value.detail["files"]
    assert db.get_collection("a").count() == count
    assert results(db, queries) == before
    with pytest.raises(InvalidInput):
        db.restore(tmp_path / "nothing-here")


def test_verify_detects_drift_and_repair_fixes_it(tmp_path: Path) -> None:
    db, queries = build(tmp_path)
    assert db.verify("a")["ok"]
    engine = db.store.engine
    with engine.begin() as conn:
        conn.execute(
            sqlalchemy.delete(points_table).where(
                points_table.c.collection == "a", points_table.c.point_id.in_([20, 21])
            )
        )
        conn.execute(
            sqlalchemy.update(points_table)
            .where(points_table.c.collection == "a", points_table.c.point_id.in_(range(100, 1500)))
            .values(vector=np.full(DIM, 0.2, dtype="<f4").tobytes())
        )
    report = db.verify("a")
    assert not report["ok"]
    assert report["extra_ids"] == [20, 21] and report["missing"] == 0
    assert report["store_count"] == report["index_count"] - 2
    assert report["vector_mismatches"]
    repaired = db.repair("a")
    assert repaired["ok"]
    col = db.get_collection("a")
    assert col.count() == 1497 - 2
    assert 20 not in col.ids().tolist()
    np.testing.assert_array_equal(col.get(200)[0], np.full(DIM, 0.2, dtype=np.float32))  # the store wins


@pytest.mark.parametrize("damage", ["flip-index-byte", "remove-snapshot", "truncate-vectors"])
def test_corrupt_or_missing_snapshot_is_rebuilt_from_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    db, queries = build(tmp_path)
    db.snapshot_all()
    before = [[h.id for h in r] for r in (db.get_collection("b").search(q, k=8, ef=900) for q in queries)]
    db.close()
    folder = tmp_path / "vectors" / "b"
    snapshot = folder / "snapshots" / (folder / "CURRENT").read_text()
    if damage == "flip-index-byte":
        data = bytearray((snapshot / "index.faiss").read_bytes())
        data[len(data) // 3] ^= 0x01
        (snapshot / "index.faiss").write_bytes(bytes(data))
    elif damage == "remove-snapshot":
        (folder / "CURRENT").unlink()
    else:
        vectors = next(folder.glob("vectors-*.f32"))
        with open(vectors, "r+b") as handle:
            handle.truncate(100)
    with caplog.at_level(logging.WARNING, logger="metamedia.vectors"):
        col = open_db(tmp_path).get_collection("b")
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    assert col.count() == 800
    assert [[h.id for h in col.search(q, k=8, ef=900)] for q in queries] == before
    assert col.verify()["ok"]


def test_reopen_checks_stamps_and_verify_finds_bit_rot_the_stamp_skips(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reopen checks sizes + sampled blocks (a torn or truncated file is refused and rebuilt);
    a flipped byte between sampled blocks loads, and `verify` (full sha256) names it, backup
    refuses it and `repair` replaces it."""
    db = open_db(tmp_path / "a")
    col = db.create_collection(CollectionConfig(name="big", dim=DIM))
    vectors = ClusteredDataset(DIM, 20, seed=1).sample(4000, seed=5)[0]
    col.upsert(np.arange(4000), vectors, [{"n": i} for i in range(4000)])
    db.close()
    folder = tmp_path / "a" / "vectors" / "big"
    snapshot = folder / "snapshots" / (folder / "CURRENT").read_text()
    index_file = snapshot / "index.faiss"
    data = bytearray(index_file.read_bytes())
    ranges = sampled_ranges(len(data))
    assert len(ranges) > 1  # big enough to be sampled, not hashed whole, on open
    # A byte in the stored vectors (the end of the file) between two sampled blocks: faiss still
    # reads the file (a flip in the graph's neighbour lists is refused by faiss itself on read).
    spot = ranges[-3][0] + ranges[-3][1] + 100
    assert spot > len(data) - 4000 * DIM * 4
    assert all(not (start <= spot < start + size) for start, size in ranges)
    data[spot] ^= 0x40
    index_file.write_bytes(bytes(data))

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="metamedia.vectors"):
        db = open_db(tmp_path / "a")
        col = db.get_collection("big")
    assert not any("rebuilding" in r.getMessage() for r in caplog.records)
    report = col.verify()
    assert not report["ok"] and "index.faiss" in report["snapshot_problem"]
    with pytest.raises(SnapshotError, match="run repair"):
        db.backup(tmp_path / "backup")
    assert db.repair("big")["ok"]
    assert db.get_collection("big").verify()["ok"]
    db.close()

    # A torn (truncated) file fails the stamp on open: the collection is rebuilt from the store.
    snapshot = folder / "snapshots" / (folder / "CURRENT").read_text()
    with open(snapshot / "index.faiss", "r+b") as handle:
        handle.truncate(len(data) - 4096)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="metamedia.vectors"):
        col = open_db(tmp_path / "a").get_collection("big")
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    assert col.count() == 4000
    np.testing.assert_allclose(col.get(7)[0], vectors[7] / np.linalg.norm(vectors[7]), rtol=1e-5)
