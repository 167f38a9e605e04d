"""The server's first-start work, on a background thread so /health answers from the first second.

Order: the demo catalog (when configured and not yet loaded), index repair from the store of
record, model warm-up — then the server is ready (/ready turns 200) — then the demo's MovieLens
community. Every step reports progress as log lines and stops at the next step or batch once
`stop()` is called (SIGTERM), leaving what was committed to be finished on the next start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .demo import load_demo_catalog, load_demo_community
from .progress import LoadCancelled, ProgressLog

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("metamedia.startup")


class StartupLoader:
    """Runs the first-start steps of an engine on one thread and says how far they are."""

    def __init__(
        self,
        engine: Engine,
        *,
        demo_catalog: Path | None = None,
        log_every: float = 5.0,
        repair: bool = True,
        on_ready: Callable[[], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        failed: str | None = None,
    ) -> None:
        """`repair=False` skips the index check (another process did it); `on_ready` runs once
        the server is ready (the primary tells the other processes its first load is done),
        `on_failed` with the error when the load fails before that; `failed` (another process's
        failed first load) makes this loader fail at once with that error, loading nothing."""
        self.engine = engine
        self.demo_catalog = demo_catalog
        self.repair = repair
        self.on_ready = on_ready
        self.on_failed = on_failed
        self.failed = failed
        self.ready = threading.Event()
        self.finished = threading.Event()
        self.progress = ProgressLog(log, every=log_every)
        self.state = "starting"
        self.error: str | None = None
        self.warm_up_error: Exception | None = None
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="metamedia-startup", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> bool:
        """Ask the load to stop at its next batch and wait for it; True when it stopped in time."""
        self.progress.cancel.set()
        self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        if not stopped:
            log.warning("startup load still running after %.0f s; closing anyway", timeout)
        return stopped

    def status(self) -> dict[str, Any]:
        """What /ready and /health report while loading."""
        out: dict[str, Any] = {"state": self.state, **self.progress.snapshot()}
        out["elapsed_s"] = round(time.monotonic() - self.started_at, 1)
        if self.error:
            out["error"] = self.error
        return out

    def _warm_up(self) -> None:
        """Load the model before traffic (one query embedded)."""
        try:
            self.engine.embedder.encode_query("warm up")
        except Exception as exc:  # raised again by the load thread, which reports it
            self.warm_up_error = exc

    def _run(self) -> None:
        if self.failed is not None:
            self.state, self.error = "failed", self.failed
            self.finished.set()
            return
        engine, progress = self.engine, self.progress
        # The model loads on its own thread meanwhile: the catalog load is mostly one core of Python.
        warm = threading.Thread(target=self._warm_up, name="metamedia-warm-up", daemon=True)
        warm.start()
        try:
            if self.demo_catalog is not None:
                self.state = "loading demo catalog"
                progress.mark()
                load_demo_catalog(engine, self.demo_catalog, progress=progress)
            progress.check()
            if self.repair:
                self.state = "checking index"
                progress.mark()
                fix = engine.repair_index(progress=progress)
                if fix["repaired"]:
                    log.warning("index disagreed with the store and was repaired: %s", fix)
                else:
                    log.info("index consistent with the store: %d items", fix["items"])
                progress.check()
            self.state = "loading model"
            while warm.is_alive():
                warm.join(0.5)
                progress.check()
            if self.warm_up_error is not None:
                raise self.warm_up_error
            self.state = "ready"
            self.ready.set()
            log.info("ready after %.1f s", time.monotonic() - self.started_at)
            if self.on_ready is not None:
                self.on_ready()
            if self.demo_catalog is not None:
                self.state = "ready; importing the demo community"
                progress.mark()
                if load_demo_community(engine, self.demo_catalog, progress=progress) is not None:
                    while not engine.recs.models.wait_done(0.5):  # collaborative models fitted
                        progress.check()
                    log.info("demo community ready: collaborative recommenders fitted")
                self.state = "ready"
        except LoadCancelled as exc:
            self.state = "stopped"
            log.info("startup load stopped (%s); it resumes on the next start", exc.message)
        except Exception as exc:  # the server stays up (health answers) and says what failed
            self.state = "failed"
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("startup load failed")
            if self.on_failed is not None and not self.ready.is_set():
                self.on_failed(self.error)
        finally:
            self.finished.set()
