"""This server process's part among `metamedia serve --workers N`: what it owns, when it may serve.

With one worker nothing changes: the process is its own primary. With several, one primary
(`coord.roles`) does the first-start load, runs the learner schedule and writes the vector
snapshots on close; the others wait for its first load before they open their engine, then serve,
and the first to take the lock when the primary dies inherits its schedule.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from fastapi.concurrency import run_in_threadpool

from ..coord.roles import STOPPED, ProcessRole, single_process_status
from ..engine import Engine
from ..memory.scheduler import LearnerSchedule, start_learner_schedule, stop_learner_schedule
from ..settings import Settings

log = logging.getLogger("metamedia.api.processes")


class ServerProcess:
    """The lifespan's handle on this process's role (`role` is None when it serves alone)."""

    def __init__(self, settings: Settings) -> None:
        self.role = ProcessRole(settings.data_dir, workers=settings.workers) if settings.workers > 1 else None
        self._stop = threading.Event()
        self._engine: Engine | None = None
        self._schedule: LearnerSchedule | None = None
        self._lock = threading.Lock()
        self.failure: str | None = None  # why this process does not serve (its primary's first load failed)
        self._load_error: str | None = None  # the failed first load's own error, passed on at a promotion

    @property
    def is_primary(self) -> bool:
        return self.role is None or self.role.is_primary

    async def wait_turn(self) -> bool:
        """Before the engine opens: True when this process is (or became) the primary and does the
        first load; False once the primary's first load of this run is over (done, or failed: then
        `failure` says what failed) or this process is shutting down (`stopping`)."""
        if self.role is None:
            return True
        if self.role.try_acquire():
            return True
        log.info("process %d waits for the primary's first load", self.role.pid)
        with self._stop_on_signals():
            outcome = await run_in_threadpool(self.role.wait_for_first_load, self._stop)
        if outcome is None:
            return True
        if outcome is STOPPED:
            log.info("process %d stops before it opened: the server is shutting down", self.role.pid)
        elif outcome.error is not None:
            self._load_error = outcome.error
            self.failure = f"the primary (process {outcome.pid}) failed its first load: {outcome.error}"
            log.error("process %d opens without serving: %s", self.role.pid, self.failure)
        return False

    @property
    def stopping(self) -> bool:
        """A signal to stop came while this process waited for its turn: it opens nothing."""
        return self._stop.is_set()

    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """While waiting: SIGINT/SIGTERM (Ctrl-C, the supervisor's shutdown) also set `_stop`, so a
        process that is shutting down never takes the primary role and starts the first load.
        uvicorn's own handlers still run (chained); they are put back afterwards."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(sig: int, frame: FrameType | None) -> None:
            self._stop.set()
            chained = previous[sig]
            if callable(chained):
                chained(sig, frame)
            elif chained != signal.SIG_IGN:  # the default action, as if we had not been here
                signal.signal(sig, chained)
                signal.raise_signal(sig)

        for sig in previous:
            signal.signal(sig, handler)
        try:
            yield
        finally:
            for sig, chained in previous.items():
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, chained)

    def loader_options(self, primary: bool) -> dict[str, Any]:
        """The StartupLoader's hooks for this process: the primary records how its first load ended
        for the others; a process whose primary failed reports that failure instead of loading."""
        return {"on_ready": self.first_load_done if primary else None, "on_failed": self.first_load_failed,
                "failed": self.failure}  # fmt: skip

    def first_load_done(self) -> None:
        if self.role is not None:
            self.role.mark_startup_done()

    def first_load_failed(self, error: str) -> None:
        """This process's first load failed; when it is the primary the others learn it."""
        self.failure = self.failure or error
        self._load_error = self._load_error or error
        if self.role is not None and self.role.is_primary:
            self.role.mark_first_load(error)

    def _promoted(self) -> None:
        """Became primary while serving: nothing to load; the marker repeats this process's state."""
        if self.role is not None:
            self.role.mark_first_load(self._load_error)

    def serve(self, engine: Engine) -> None:
        """The engine is open: the primary starts the learner schedule; another process starts
        trying for the lock and starts the schedule if it ever becomes primary."""
        self._engine = engine
        if self.is_primary:
            self._start_schedule()
        elif self.role is not None:
            self.role.on_promoted.append(self._promoted)  # serving already: nothing to load
            self.role.on_promoted.append(self._start_schedule)
            self.role.start()

    def _start_schedule(self) -> None:
        with self._lock:
            if self._engine is not None and self._schedule is None and not self._stop.is_set():
                self._schedule = start_learner_schedule(self._engine)

    def close(self, engine: Engine | None) -> None:
        """Stop the schedule, close the engine (snapshots only from the primary), give the lock up."""
        self._stop.set()
        with self._lock:
            schedule, self._schedule = self._schedule, None
        if schedule is not None:
            stop_learner_schedule(schedule)
        if engine is not None:
            engine.close(snapshot=self.is_primary)  # the lock is held until the snapshot is written
        if self.role is not None:
            self.role.close()

    def status(self) -> dict[str, Any]:
        return self.role.status() if self.role is not None else single_process_status()


def process_status(state: Any) -> dict[str, Any]:
    """Which process answered (for /health and /ready): pid, primary or not, how many workers."""
    process: ServerProcess | None = getattr(state, "process", None)
    return process.status() if process is not None else single_process_status()
