"""Run the nightly learner inside the server every METAMEDIA_LEARN_INTERVAL seconds (off when 0).

The app lifespan calls `start_learner_schedule(engine)` after the engine is open and
`stop_learner_schedule(handle)` before it closes. The learner runs on a daemon thread: it is
CPU-bound and blocking, so it must stay off the event loop. A failed run is logged, not fatal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import Conflict, InvalidInput
from ..settings import Settings
from .facade import MemoryFacade, MemoryHost

log = logging.getLogger("metamedia.memory.scheduler")


@dataclass
class LearnerSchedule:
    """A running schedule: its thread, the stop flag, and what the runs so far reported."""

    interval: float
    stop_flag: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0


def _loop(schedule: LearnerSchedule, run: Callable[[], dict[str, Any]]) -> None:
    # wait() returns True as soon as stop is requested, so shutdown never waits a whole interval.
    while not schedule.stop_flag.wait(schedule.interval):
        try:
            report = run()
        except Conflict:
            log.info("scheduled learner run skipped: another run is in progress")
            continue
        except Exception:  # a bad run must not kill the schedule; the next one may succeed
            schedule.failures += 1
            log.exception("scheduled learner run failed")
            continue
        schedule.runs.append({"run_id": report.get("run_id"), "duration_s": report.get("duration_s")})
        log.info("scheduled learner run %s done in %.1fs", report.get("run_id"), report.get("duration_s", 0))


class ScheduledHost(MemoryHost, Protocol):
    """The engine as the schedule uses it: the facade's needs plus the settings."""

    @property
    def settings(self) -> Settings: ...


def start_learner_schedule(engine: ScheduledHost, interval: float | None = None) -> LearnerSchedule | None:
    """Start learning every `interval` seconds (default: the engine's `learn_interval` setting,
    METAMEDIA_LEARN_INTERVAL); None when off."""
    seconds = engine.settings.learn_interval if interval is None else float(interval)
    if seconds < 0:
        raise InvalidInput(f"the learn interval must be >= 0, got {seconds}")
    if seconds == 0:
        return None
    facade = MemoryFacade(engine)
    schedule = LearnerSchedule(seconds)
    schedule.thread = threading.Thread(
        name="metamedia-learner", daemon=True, target=_loop, args=(schedule, facade.learn)
    )
    schedule.thread.start()
    log.info("learner scheduled every %.0f s", seconds)
    return schedule


def stop_learner_schedule(schedule: LearnerSchedule | None, timeout: float = 30.0) -> None:
    """Ask the schedule to stop and wait up to `timeout` seconds for a run in progress to finish."""
    if schedule is None:
        return
    schedule.stop_flag.set()
    if schedule.thread is not None:
        schedule.thread.join(timeout)
