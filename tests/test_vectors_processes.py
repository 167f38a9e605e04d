"""Several processes over one data folder: each sees the others' writes at its next read, writes
never conflict, and a compaction in one never lets another return a deleted point.

Each test runs a real second process (multiprocessing spawn) with its own VectorDB over the same
SQLite file and folder, driven through a pipe.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy

from metamedia.vectors import CollectionConfig, VectorDB
from metamedia.vectors.synthetic import ClusteredDataset

DIM = 16


def open_db(folder: Path) -> VectorDB:
    return VectorDB(sqlalchemy.create_engine(f"sqlite:///{folder / 'store.db'}"), folder)


def vectors(seed: int, n: int = 1) -> np.ndarray:
    return ClusteredDataset(DIM, 8, seed=0).sample(n, seed=seed)[0]


def _serve(folder: str, conn: Connection) -> None:
    """The other process: run commands on its own VectorDB until told to stop."""
    db = open_db(Path(folder))
    while True:
        command, args = conn.recv()
        if command == "stop":
            db.close(snapshot=False)
            conn.send(None)
            return
        try:
            col = db.get_collection("c")
            if command == "ids":
                conn.send(col.ids().tolist())
            elif command == "search":
                conn.send([hit.id for hit in col.search(np.asarray(args[0]), k=args[1], ef=200)])
            elif command == "write_many":
                start, count = args
                for i in range(start, start + count):
                    col.upsert([i], vectors(i), [{"by": "child", "i": i}])
                    if i % 5 == 4:
                        col.delete([i - 2])
                conn.send("ok")
            elif command == "verify":
                conn.send(col.verify())
            elif command == "compact":
                conn.send(col.compact())
            elif command == "reopen_many":  # fresh opens while the other process writes snapshots
                loaded = []
                for _ in range(args[0]):
                    fresh = open_db(Path(folder))
                    opened = fresh.get_collection("c")
                    loaded.append(opened.describe()["snapshot_version"] is not None)
                    fresh.close(snapshot=False)
                conn.send(loaded)
            else:
                conn.send(("error", f"unknown command {command}"))
        except Exception as exc:  # sent back so the test shows it
            conn.send(("error", repr(exc)))


class Other:
    """A second process over the same folder."""

    def __init__(self, folder: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(str(folder), child), daemon=True)
        self.process.start()

    def ask(self, command: str, *args: Any) -> Any:
        self.conn.send((command, args))
        if not self.conn.poll(120):
            raise TimeoutError(command)
        answer = self.conn.recv()
        if isinstance(answer, tuple) and answer and answer[0] == "error":
            raise AssertionError(f"other process failed: {answer[1]}")
        return answer

    def send(self, command: str, *args: Any) -> None:
        self.conn.send((command, args))

    def receive(self) -> Any:
        if not self.conn.poll(120):
            raise TimeoutError
        return self.conn.recv()

    def stop(self) -> None:
        self.ask("stop")
        self.process.join(30)


@pytest.fixture(params=["float32", "int8"])
def folder(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    db = open_db(tmp_path)
    config = CollectionConfig(name="c", dim=DIM, precision=request.param, ef_construction=40, train_size=64)
    col = db.create_collection(config)
    col.upsert(np.arange(100), vectors(1, 100), [{"i": i} for i in range(100)])
    col.snapshot()  # both processes load this snapshot: they share its files
    db.close()
    return tmp_path


@pytest.fixture
def other(folder: Path) -> Iterator[Other]:
    other = Other(folder)
    yield other
    other.stop()


def test_a_write_here_is_found_there_at_the_next_read(folder: Path, other: Other) -> None:
    db = open_db(folder)
    col = db.get_collection("c")
    probe = vectors(777)[0]
    assert 5000 not in other.ask("search", probe.tolist(), 5)
    col.upsert([5000], vectors(777), [{"new": True}])
    assert other.ask("search", probe.tolist(), 5)[0] == 5000  # a vector hit, not a store lookup
    col.delete([5000])
    assert 5000 not in other.ask("search", probe.tolist(), 5)
    assert other.ask("ids") == col.ids().tolist()
    db.close()


def test_concurrent_writers_in_two_processes_never_conflict(folder: Path, other: Other) -> None:
    db = open_db(folder)
    col = db.get_collection("c")
    other.send("write_many", 1000, 50)  # the other process writes while this one does
    for i in range(2000, 2050):
        col.upsert([i], vectors(i), [{"by": "parent", "i": i}])
        if i % 5 == 4:
            col.delete([i - 2])
    assert other.receive() == "ok"
    stored = db.store.ids("c").tolist()
    assert col.ids().tolist() == stored
    assert other.ask("ids") == stored
    assert len(stored) == 100 + 2 * (50 - 10)
    assert col.verify()["ok"]
    assert other.ask("verify")["ok"]
    db.close()


def test_compaction_elsewhere_never_brings_a_deleted_point_back(folder: Path, other: Other) -> None:
    db = open_db(folder)
    col = db.get_collection("c")
    probe = vectors(1, 100)[:10]
    gone = [hits[0] for hits in (other.ask("search", q.tolist(), 1) for q in probe)]
    other.ask("ids")  # the other process is now at the current version
    col.delete(gone)  # tombstones...
    stats = col.compact()  # ...purged here, after a new snapshot
    assert stats["purged_tombstone_rows"] == len(set(gone))
    for q in probe:
        assert not set(other.ask("search", q.tolist(), 10)) & set(gone)
    assert other.ask("ids") == col.ids().tolist() == db.store.ids("c").tolist()
    assert other.ask("verify")["ok"]
    # and the other way round: a compaction there, writes here still apply on top of it
    other.ask("compact")
    col.upsert([9000], vectors(9000), [{}])
    assert other.ask("search", vectors(9000)[0].tolist(), 1) == [9000]
    assert col.verify()["ok"]
    db.close()


def test_snapshots_replace_files_that_other_processes_map(folder: Path) -> None:
    db = open_db(folder)
    col = db.get_collection("c")
    others = [Other(folder) for _ in range(2)]
    try:
        for round_ in range(5):
            col.upsert([3000 + round_], vectors(3000 + round_), [{}])
            col.snapshot()  # replaces the snapshot and removes the old one while the others open
            for other in others:
                assert 3000 + round_ in other.ask("ids")
        files = sorted(p.name for p in (folder / "vectors" / "c").glob("vectors-*.f32"))
        assert len(files) <= 3  # one per process at most, older generations cleaned up
    finally:
        for other in others:
            other.stop()
        db.close()


def test_opening_while_another_process_writes_snapshots_never_falls_back(folder: Path, other: Other) -> None:
    db = open_db(folder)
    col = db.get_collection("c")
    other.ask("ids")  # the other process is up
    other.send("reopen_many", 30)
    round_ = 0
    while not other.conn.poll(0):  # snapshots replace (and remove) the one the other may be opening
        col.upsert([4000 + round_ % 50], vectors(4000 + round_), [{}])
        col.snapshot()
        round_ += 1
    loaded = other.receive()
    assert round_ > 5
    assert loaded == [True] * 30  # every open loaded a whole snapshot, none rebuilt from the store
    db.close()
