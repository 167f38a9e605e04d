"""Progress of long loads as periodic log lines (done/total, rate, ETA), with a way to stop them."""

from __future__ import annotations

import logging
import threading
import time

from .errors import MetamediaError


class LoadCancelled(MetamediaError):
    """A long load was asked to stop (the server is shutting down)."""

    status_code = 503


def format_eta(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressLog:
    """A `Progress` callback (stage, done, total) that logs one line per stage every `every` seconds
    and at the end of each stage, and raises LoadCancelled once `cancel` is set.

    It also keeps the latest figures (`snapshot()`) for a status endpoint.
    """

    def __init__(
        self, logger: logging.Logger, *, every: float = 5.0, cancel: threading.Event | None = None
    ) -> None:
        self.logger = logger
        self.every = every
        self.cancel = cancel or threading.Event()
        self._lock = threading.Lock()
        self._stage = ""
        self._started = 0.0
        self._last_log = 0.0
        self._last_call = time.monotonic()  # a stage's first report comes after its first batch
        self._done = 0
        self._total = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.cancel.is_set():
            raise LoadCancelled(f"stopped during {stage} at {done}/{total}")
        now = time.monotonic()
        with self._lock:
            if stage != self._stage:
                self._stage, self._started, self._last_log = stage, self._last_call, now
            self._last_call = now
            self._done, self._total = done, total
            finished = total > 0 and done >= total
            if not finished and now - self._last_log < self.every:
                return
            self._last_log = now
            elapsed = now - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        if finished:
            self.logger.info("%s: %d/%d done in %.1f s (%.0f/s)", stage, done, total, elapsed, rate)
        else:
            eta = format_eta((total - done) / rate) if rate > 0 else "unknown"
            pct = 100.0 * done / total if total else 0.0
            self.logger.info("%s: %d/%d (%.0f%%), %.0f/s, ETA %s", stage, done, total, pct, rate, eta)

    def mark(self) -> None:
        """A new step begins now (its first report times from here)."""
        with self._lock:
            self._last_call = time.monotonic()

    def check(self) -> None:
        """Raise LoadCancelled if a stop was asked for (between steps that report no progress)."""
        if self.cancel.is_set():
            raise LoadCancelled("stopped")

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"stage": self._stage, "done": self._done, "total": self._total}
