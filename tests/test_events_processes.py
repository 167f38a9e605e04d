"""The shared event log of several server processes: real OS processes publishing into one SQLite file,
a subscriber in another process seeing each event once in the global order, resume from any
process, a bounded private file."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metamedia.api.events import Event
from metamedia.api.events_shared import SharedEventBus
from metamedia.coord.events_log import EventLog, events_log_path
from metamedia.errors import InvalidInput

# What a server process's SharedEventBus.publish stores (without importing the whole app, 2 s here):
# wait for "go", append, print the ids.
PUBLISHER = """
import json, sys, time
from pathlib import Path
from metamedia.coord.events_log import EventLog

path, name, count, capacity, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
log = EventLog(path, capacity=capacity)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
ids = []
for n in range(count):
    ids.append(log.append("interaction", {"process": name, "n": n, "user_id": name}).id)
    if n % 7 == 0:
        time.sleep(0.001)  # let the other process in between
log.close()
print(json.dumps(ids), flush=True)
"""


def start_publishers(path: Path, tmp: Path, count: int, capacity: int) -> list[subprocess.Popen[str]]:
    go = tmp / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(path), name, str(count), str(capacity), str(go)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    for proc in procs:  # both opened the log: start them together
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    return procs


def published_ids(procs: list[subprocess.Popen[str]]) -> dict[str, list[int]]:
    out = {}
    for name, proc in zip(("a", "b"), procs, strict=True):
        stdout, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    return out


async def receive(bus: SharedEventBus, want: int, last_id: int | None, timeout: float) -> list[Event | None]:
    got: list[Event | None] = []

    async def run() -> None:
        async for event in bus.subscribe(last_id):
            got.append(event)
            if len([e for e in got if e is not None]) == want:
                return

    await asyncio.wait_for(run(), timeout)
    return got


def test_two_publishing_processes_reach_a_subscriber_in_a_third_once_in_order(tmp_path: Path) -> None:
    path = events_log_path(tmp_path / "data")
    bus = SharedEventBus(EventLog(path, capacity=1000), poll_interval=0.05)
    count = 150

    async def scenario() -> list[Event | None]:
        subscription = asyncio.ensure_future(receive(bus, 2 * count, None, timeout=40))
        await asyncio.sleep(0.3)  # subscribed (and tailing) before anyone publishes
        procs = await asyncio.to_thread(start_publishers, path, tmp_path, count, 1000)
        got = await subscription
        ids.update(await asyncio.to_thread(published_ids, procs))
        return got

    ids: dict[str, list[int]] = {}
    got = asyncio.run(scenario())
    bus.close()
    events = [e for e in got if e is not None]
    assert len(events) == len(got) == 2 * count  # no reset: nothing was lost
    received = [e.id for e in events]
    assert received == sorted(received) and len(set(received)) == len(received)  # once each, in id order
    assert sorted(received) == sorted(ids["a"] + ids["b"])  # exactly what both processes published
    for name in ("a", "b"):  # each process's own events in the order it published them
        assert [e.data["n"] for e in events if e.data["process"] == name] == list(range(count))
    owners = [e.data["process"] for e in events]
    switches = sum(1 for x, y in zip(owners, owners[1:], strict=False) if x != y)
    assert switches > 2  # the two processes' events really were interleaved in one order


def test_resume_after_a_last_event_id_from_another_process(tmp_path: Path) -> None:
    path = events_log_path(tmp_path / "data")
    procs = start_publishers(path, tmp_path, 20, 1000)
    ids = published_ids(procs)
    everything = sorted(ids["a"] + ids["b"])
    # This process never saw these events live; a client resumes here after the 10th of them.
    bus = SharedEventBus(EventLog(path, capacity=1000))
    got = asyncio.run(receive(bus, 30, everything[9], timeout=20))
    assert None not in got and [e.id for e in got if e is not None] == everything[10:]
    # With a window of 10, an id from before it gets a reset first, then what is left.
    small = SharedEventBus(EventLog(path, capacity=10))
    small.publish("learner.run", {})
    small.refresh()
    got = asyncio.run(receive(small, 10, everything[5], timeout=20))
    assert got[0] is None and [e.id for e in got[1:] if e is not None] == [*everything[31:], small.last_id]
    bus.close()
    small.close()


def test_log_is_bounded_private_and_ids_keep_growing_after_a_restart(tmp_path: Path) -> None:
    path = events_log_path(tmp_path / "data")
    procs = start_publishers(path, tmp_path, 60, 8)
    ids = published_ids(procs)
    log = EventLog(path, capacity=8)
    assert log.count() == 8
    events, trimmed = log.read_after(0)
    assert [e.id for e in events] == sorted(ids["a"] + ids["b"])[-8:]
    assert trimmed == sorted(ids["a"] + ids["b"])[-9]
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists():
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    last = log.last_id()
    log.close()
    # The run folder cleared (a restart on a fresh machine): new ids still come after every old one.
    for file in path.parent.glob(path.name + "*"):
        file.unlink()
    time.sleep(0.2)  # ids start at the clock in ms: more ms have passed than events were published
    fresh = EventLog(path, capacity=8)
    assert fresh.append("learner.run", {}).id > last
    fresh.close()


def test_bad_capacity_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        EventLog(tmp_path / "events.sqlite3", capacity=0)
