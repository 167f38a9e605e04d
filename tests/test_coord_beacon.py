"""The change beacon: bumps from several processes are never lost, a broken file is recreated."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

from metamedia.coord import beacon as beacon_module
from metamedia.coord.beacon import ChangeBeacon, beacon_path
from metamedia.coord.filelock import ProcessLock


def _bump_many(path: str, times: int) -> None:
    beacon = ChangeBeacon(path)
    for _ in range(times):
        beacon.bump()


def test_concurrent_bumps_from_several_processes_are_all_counted(tmp_path: Path) -> None:
    path = beacon_path(tmp_path)
    reader = ChangeBeacon(path)
    start = reader.value()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_bump_many, args=(str(path), 300)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert reader.value() == start + 3 * 300  # the mapped reader sees every bump, none lost


def test_file_is_private_and_in_the_run_folder(tmp_path: Path) -> None:
    beacon = ChangeBeacon(beacon_path(tmp_path))
    assert beacon.path == tmp_path / "run" / "changes"
    assert stat.S_IMODE(beacon.path.stat().st_mode) & 0o077 == 0


def test_a_reader_sees_another_instances_bump_without_rereading(tmp_path: Path) -> None:
    reader, writer = ChangeBeacon(beacon_path(tmp_path)), ChangeBeacon(beacon_path(tmp_path))
    before = reader.value()
    assert writer.bump() == before + 1
    assert reader.value() == before + 1


def test_a_corrupt_file_is_repaired_and_reads_as_changed(tmp_path: Path) -> None:
    path = beacon_path(tmp_path)
    beacon = ChangeBeacon(path)
    seen = beacon.value()
    path.write_bytes(b"garbage!")  # short and foreign: the next bump rewrites it in place
    after = beacon.bump()
    assert after != seen
    assert path.read_bytes()[:8] == beacon_module.MAGIC
    assert ChangeBeacon(path).value() == after == beacon.value()


def test_a_deleted_file_is_recreated_and_readers_follow_it(tmp_path: Path) -> None:
    path = beacon_path(tmp_path)
    reader = ChangeBeacon(path, recheck_s=0.0)  # re-stats the path on every read
    seen = reader.value()
    os.unlink(path)
    value = ChangeBeacon(path).bump()  # another process recreates it (seeded from the clock)
    assert path.exists()
    assert reader.value() == value != seen


def test_an_unwritable_place_degrades_without_failing(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("a file where the run folder should be")
    beacon = ChangeBeacon(beacon_path(tmp_path))
    assert not beacon.available  # logged; this process still answers, others just do not hear it
    first = beacon.value()
    assert beacon.bump() != first


def _hold_lock(path: str, ready: object, release: object) -> None:
    with ProcessLock(path):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def test_process_lock_excludes_another_process(tmp_path: Path) -> None:
    path = tmp_path / "run" / "x.lock"
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(path), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        lock = ProcessLock(path)
        assert not lock.acquire(blocking=False)
        release.set()
        holder.join(30)
        assert lock.acquire(blocking=False)
        assert lock.acquire()  # re-entrant in the holder
        lock.release()
        lock.release()
        assert not lock.held
    finally:
        release.set()
        holder.join(30)
