"""Rate limits shared by several OS processes through the SQLite storage (real processes, real files)."""

from __future__ import annotations

import dataclasses
import fcntl
import multiprocessing
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi import HTTPException
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter

from metamedia.api.ratelimit import RateLimiter
from metamedia.api.ratelimit_sqlite import PRUNE_EVERY, SQLiteStorage, sqlite_uri
from metamedia.errors import BackendUnavailable
from metamedia.settings import Settings

_FORK = multiprocessing.get_context("fork")  # real OS processes, without re-importing the app (~4 s each)


def _hit_from_a_process(path: Path, spec: str, hits: int, identifier: str, ready: Any, results: Any) -> None:
    """One server-like process: its own limiter on the file; waits for the others, then hits."""
    limiter = RateLimiter(spec, shared_file=path)
    ready.wait(30)
    admitted, refused = 0, []
    for _ in range(hits):
        try:
            limiter.hit(identifier)
            admitted += 1
        except HTTPException as exc:
            refused.append((exc.status_code, (exc.headers or {})["Retry-After"]))
    results.put({"admitted": admitted, "refused": refused})


def run_processes(
    path: Path, spec: str, hits: int, processes: int, identifier: str = "key:shared"
) -> list[dict[str, Any]]:
    """`processes` OS processes hitting one key at the same moment through the file at `path`."""
    ready, results = _FORK.Barrier(processes), _FORK.Queue()
    procs = [
        _FORK.Process(target=_hit_from_a_process, args=(path, spec, hits, identifier, ready, results))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    outputs = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(30)
    assert all(proc.exitcode == 0 for proc in procs)
    return outputs


def test_three_processes_admit_the_limit_once_not_three_times(tmp_path: Path) -> None:
    path = tmp_path / "run" / "ratelimit.sqlite3"
    results = run_processes(path, "25/minute", hits=20, processes=3)
    assert sum(int(r["admitted"]) for r in results) == 25  # memory storage would admit 3 x 20 = 60
    refused = [entry for r in results for entry in r["refused"]]
    assert len(refused) == 35
    assert all(code == 429 and 1 <= int(retry) <= 60 for code, retry in refused)
    # The window outlives the processes: this (fourth) process finds it full.
    here = RateLimiter("25/minute", shared_file=path)
    with pytest.raises(HTTPException) as refused_here:
        here.hit("key:shared")
    assert refused_here.value.status_code == 429
    assert here.ping()
    here.reset()  # empties the shared windows, for every process
    assert sum(int(r["admitted"]) for r in run_processes(path, "25/minute", hits=10, processes=2)) == 20
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert oct(Path(f"{path}.lock").stat().st_mode & 0o777) == "0o600"


def _forked_child_hits(limiter: RateLimiter, hits: int) -> None:
    admitted = 0
    for _ in range(hits):
        try:
            limiter.hit("key:forked")
            admitted += 1
        except HTTPException:
            pass
    os._exit(admitted)  # the exit status carries the count


def test_a_forked_process_opens_its_own_connection_and_shares_the_count(tmp_path: Path) -> None:
    limiter = RateLimiter("10/minute", shared_file=tmp_path / "ratelimit.sqlite3")
    limiter.hit("key:forked")
    child = _FORK.Process(target=_forked_child_hits, args=(limiter, 12))
    child.start()
    child.join(30)
    assert child.exitcode == 9  # ten in the window, one spent by the parent
    with pytest.raises(HTTPException):
        limiter.hit("key:forked")  # the parent's connection still works and sees the child's hits


def test_a_process_stuck_holding_the_file_gives_503_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "ratelimit.sqlite3"
    limiter = RateLimiter("10/minute", shared_file=path)
    stuck = os.open(f"{path}.lock", os.O_RDWR)  # what a stopped process inside a write would hold
    try:
        fcntl.flock(stuck, fcntl.LOCK_EX)
        with pytest.raises(BackendUnavailable, match="rate-limit storage"):
            limiter.hit("key:a")
    finally:
        os.close(stuck)
    limiter.hit("key:a")  # released: hits count again
    key = parse("10/minute").key_for("key", "key:a")
    assert limiter.storage.get_moving_window(key, 10, 60)[1] == 1  # type: ignore[attr-defined]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _storage(tmp_path: Path, clock: Clock, sweep_every_s: float = 60.0) -> SQLiteStorage:
    return SQLiteStorage(sqlite_uri(tmp_path / "rl.sqlite3"), clock=clock, sweep_every_s=sweep_every_s)


def test_moving_window_frees_a_slot_when_the_oldest_hit_ages_out(tmp_path: Path) -> None:
    clock = Clock()
    storage = _storage(tmp_path, clock)
    limiter, item = MovingWindowRateLimiter(storage), parse("3/second")
    t0 = clock.now
    assert limiter.hit(item, "k")
    clock.now = t0 + 0.5
    assert [limiter.hit(item, "k") for _ in range(3)] == [True, True, False]
    stats = limiter.get_window_stats(item, "k")
    assert stats.remaining == 0 and stats.reset_time == pytest.approx(t0 + 1.0)
    # Not a fixed window: at t0 + 1.01 only the first hit has aged out, so exactly one slot is free.
    clock.now = t0 + 1.01
    assert [limiter.hit(item, "k") for _ in range(2)] == [True, False]
    clock.now = t0 + 1.51  # the two hits of t0 + 0.5 have aged out
    assert [limiter.hit(item, "k") for _ in range(3)] == [True, True, False]
    assert limiter.hit(item, "other")  # keys are counted apart
    assert limiter.get_window_stats(item, "k").remaining == 0
    # A window that is not full: its count and its oldest entry.
    t1 = clock.now
    clock.now = t1 + 0.2
    assert limiter.hit(item, "other")
    partial = limiter.get_window_stats(item, "other")
    assert partial.remaining == 1 and partial.reset_time == pytest.approx(t1 + 1.0)
    clock.now = t1 + 1.1  # the first has aged out, the second not
    partial = limiter.get_window_stats(item, "other")
    assert partial.remaining == 2 and partial.reset_time == pytest.approx(t1 + 1.2)


def test_expired_entries_are_cleaned_up(tmp_path: Path) -> None:
    clock = Clock()
    storage = _storage(tmp_path, clock, sweep_every_s=10.0)
    limiter, item = MovingWindowRateLimiter(storage), parse("3/second")
    for _step in range(1000):  # one busy key keeps only its newest `limit` entries (pruned in batches)
        clock.now += 0.4
        assert limiter.hit(item, "busy")
    busy_rows = storage.rows()
    assert 3 <= busy_rows <= 3 + PRUNE_EVERY
    for n in range(50):  # many keys hit once, then never again
        limiter.hit(item, f"client-{n}")
    assert storage.rows() == busy_rows + 50
    clock.now += 11.0  # past the sweep interval: the next hit sweeps every expired key
    assert limiter.hit(item, "late")
    assert storage.rows() == 1
    storage.reset()
    assert storage.rows() == 0


def test_scheme_is_registered_and_fixed_window_counters_work(tmp_path: Path) -> None:
    storage = storage_from_string(f"metamedia-sqlite://{tmp_path / 'fixed.sqlite3'}")
    assert isinstance(storage, SQLiteStorage) and storage.check()
    limiter, item = FixedWindowRateLimiter(storage), parse("2/minute")
    assert [limiter.hit(item, "k") for _ in range(3)] == [True, True, False]
    assert limiter.get_window_stats(item, "k").remaining == 0
    storage.clear(item.key_for("k"))
    assert limiter.hit(item, "k")


def test_damaged_or_unusable_file_is_a_named_error_at_startup(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"these are not the pages of a database " * 200)
    with pytest.raises(BackendUnavailable, match="rate-limit file .*corrupt.sqlite3"):
        RateLimiter("3/second", shared_file=corrupt)
    a_folder = tmp_path / "folder.sqlite3"
    a_folder.mkdir()
    with pytest.raises(BackendUnavailable, match="folder.sqlite3"):
        RateLimiter("3/second", shared_file=a_folder)
    under_a_file = tmp_path / "plain-file"
    under_a_file.write_text("x")
    with pytest.raises(BackendUnavailable, match="plain-file"):
        RateLimiter("3/second", shared_file=under_a_file / "ratelimit.sqlite3")
    assert corrupt.read_bytes().startswith(b"these are not")  # nothing was overwritten


def test_selection_follows_redis_then_workers(tmp_path: Path) -> None:
    one = RateLimiter.for_settings(Settings(data_dir=tmp_path, rate_limit="3/second"))
    assert one.backend == "memory"
    several = RateLimiter.for_settings(with_workers(Settings(data_dir=tmp_path, rate_limit="3/second"), 2))
    assert several.backend == "sqlite" and several.ping()
    assert (tmp_path / "run" / "ratelimit.sqlite3").exists()


def with_workers(settings: Settings, workers: int) -> Settings:
    """`settings` with `workers` set, whether or not the field exists yet (it comes with `serve --workers`)."""
    if hasattr(settings, "workers"):
        changes: dict[str, object] = {"workers": workers}
        return dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
    object.__setattr__(settings, "workers", workers)
    return settings
