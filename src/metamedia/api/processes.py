"""This server process's part among `metamedia serve --workers N`: what it owns, when it may serve.

With one worker nothing changes: the process is its own primary. With several, one primary
(`coord.roles`) does the first-start load, runs the learner schedule and writes the vector
snapshots on close; the others wait for its first load before they open their engine, then serve,
and the first to take the lock when the primary dies inherits its schedule.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi.concurrency import run_in_threadpool

from ..coord.roles import ProcessRole, single_process_status
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

    @property
    def is_primary(self) -> bool:
        return self.role is None or self.role.is_primary

    async def wait_turn(self) -> bool:
        """Before the engine opens: True when this process is (or became) the primary and does the
        first load; False once the primary finished its first load of this run."""
        if self.role is None:
            return True
        if self.role.try_acquire():
            return True
        log.info("process %d waits for the primary's first load", self.role.pid)
        done = await run_in_threadpool(self.role.wait_for_first_load, self._stop)
        return not done

    def first_load_done(self) -> None:
        if self.role is not None:
            self.role.mark_startup_done()

    def serve(self, engine: Engine) -> None:
        """The engine is open: the primary starts the learner schedule; another process starts
        trying for the lock and starts the schedule if it ever becomes primary."""
        self._engine = engine
        if self.is_primary:
            self._start_schedule()
        elif self.role is not None:
            self.role.on_promoted.append(self.role.mark_startup_done)  # serving already: nothing to load
            self.role.on_promoted.append(self._start_schedule)
            self.role.start()

    def _start_schedule(self) -> None:
        with self._lock:
            if self._engine is not None and self._schedule is None and not self._stop.is_set():
                self._schedule = start_learner_schedule(self._engine)

    def close(self, engine: Engine) -> None:
        """Stop the schedule, close the engine (snapshots only from the primary), give the lock up."""
        self._stop.set()
        with self._lock:
            schedule, self._schedule = self._schedule, None
        if schedule is not None:
            stop_learner_schedule(schedule)
        engine.close(snapshot=self.is_primary)  # the lock is held until the snapshot is written
        if self.role is not None:
            self.role.close()

    def status(self) -> dict[str, Any]:
        return self.role.status() if self.role is not None else single_process_status()


def process_status(state: Any) -> dict[str, Any]:
    """Which process answered (for /health and /ready): pid, primary or not, how many workers."""
    process: ServerProcess | None = getattr(state, "process", None)
    return process.status() if process is not None else single_process_status()
