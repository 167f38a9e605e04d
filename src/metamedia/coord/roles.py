"""One primary among the server processes over a data directory, chosen by a lock the kernel keeps.

The primary holds an exclusive `fcntl` lock on `<data_dir>/run/primary.lock` for as long as it
lives; the kernel drops it when the process dies however it dies, and a process still serving
(or the supervisor's replacement) takes it at its next try. The primary does the single-owner
work: the first-start load (demo catalog, index repair, demo community), the learner schedule and
vector snapshots on close. The lock file holds the primary's pid; the primary says how its first
load ended by writing `run/startup-done` (JSON: its pid, "done" or "failed" and the error's first
line). The others wait for it, then open: serving, or reporting the same failure on /ready. The
marker counts only while it names the live process holding the lock, so one left by an earlier run,
or by a primary that died, never does.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("metamedia.coord.roles")

LOCK_FILE = "primary.lock"
STARTUP_DONE_FILE = "startup-done"
RETRY_SECONDS = 1.0
ERROR_CHARS = 500


@dataclass(frozen=True)
class FirstLoad:
    """How the primary's first load of this run ended: `error` is None when it is done, else the
    first line of what failed."""

    pid: int
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


STOPPED = FirstLoad(0, "this process is shutting down")


def first_line(error: str) -> str:
    """The first line of an error, at most ERROR_CHARS long: what the marker and /ready repeat."""
    lines = error.strip().splitlines()
    return (lines[0] if lines else "unknown error")[:ERROR_CHARS]


def run_dir(data_dir: Path | str) -> Path:
    """`<data_dir>/run`: the files the processes of one server coordinate through."""
    folder = Path(data_dir) / "run"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class ProcessRole:
    """This process's role among the server's processes: primary (holds the lock) or not.

    `start()` tries the lock once; a process that did not get it retries every `retry_seconds` on a
    daemon thread and, once it holds it, calls `on_promoted` (start the learner schedule...)."""

    def __init__(self, data_dir: Path | str, *, workers: int, retry_seconds: float = RETRY_SECONDS) -> None:
        self.folder = run_dir(data_dir)
        self.workers = workers
        self.retry_seconds = retry_seconds
        self.pid = os.getpid()
        self._fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        self._primary = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.on_promoted: list[Callable[[], None]] = []

    @property
    def is_primary(self) -> bool:
        return self._primary.is_set()

    def try_acquire(self) -> bool:
        """Take the primary lock if it is free; True when this process holds it (now or already)."""
        if self._primary.is_set():
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(self.pid).encode(), 0)
        self._primary.set()
        log.info("process %d is the primary of %d server processes", self.pid, self.workers)
        return True

    def start(self) -> bool:
        """Try once now; when another process is primary, keep trying in the background."""
        if not self.try_acquire():
            self._thread = threading.Thread(target=self._retry, name="metamedia-role", daemon=True)
            self._thread.start()
        return self.is_primary

    def _retry(self) -> None:
        while not self._stop.wait(self.retry_seconds):
            if self.try_acquire():
                for callback in list(self.on_promoted):
                    try:
                        callback()
                    except Exception:  # the role is taken either way; the log says what failed
                        log.exception("work on becoming primary failed")
                return

    def wait_for_first_load(self, stop: threading.Event | None = None) -> FirstLoad | None:
        """Block until the live primary's first load of this run is over (done or failed: its
        `FirstLoad`), or this process became primary first (None: the caller does the first load
        itself). Once `stop` is set (the process is shutting down) it never takes the lock: it
        returns `STOPPED`."""
        stop = stop or self._stop
        while True:
            if stop.is_set():
                return STOPPED
            outcome = self.first_load()
            if outcome is not None:
                return outcome
            if self.try_acquire():
                return None
            stop.wait(self.retry_seconds / 4)

    def mark_startup_done(self) -> None:
        """The primary's first load of this run is done: the other processes may open and serve."""
        self.mark_first_load(None)

    def mark_first_load(self, error: str | None) -> None:
        """Record how this primary's first load ended: done (`error` None) or failed (the other
        processes open and report the same failure rather than wait)."""
        record: dict[str, Any] = {"pid": self.pid, "state": "failed" if error else "done"}
        if error:
            record["error"] = first_line(error)
        marker = self.folder / STARTUP_DONE_FILE
        tmp = marker.with_suffix(f".{self.pid}.tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, marker)

    def first_load(self) -> FirstLoad | None:
        """How the live primary's first load ended, or None while it is not over (the marker counts
        only while it names the live process holding the lock)."""
        try:
            raw = (self.folder / STARTUP_DONE_FILE).read_text()
            holder = (self.folder / LOCK_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(raw)
            pid, state = int(record["pid"]), str(record["state"])
        except (ValueError, TypeError, KeyError):
            return None
        if str(pid) != holder or state not in ("done", "failed") or not _alive(pid):
            return None
        return FirstLoad(pid, str(record.get("error") or "unknown error") if state == "failed" else None)

    def startup_done(self) -> bool:
        """True when the live primary's first load (or its promotion) is over, done or failed."""
        return self.first_load() is not None

    def status(self) -> dict[str, Any]:
        """Which process answered: for /health and /ready."""
        return {"pid": self.pid, "primary": self.is_primary, "workers": self.workers}

    def close(self) -> None:
        """Stop retrying and give the lock up (the kernel would on exit anyway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry_seconds * 2)
        self._primary.clear()
        os.close(self._fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def single_process_status() -> dict[str, Any]:
    """What one process serving alone reports: it is its own primary."""
    return {"pid": os.getpid(), "primary": True, "workers": 1}
