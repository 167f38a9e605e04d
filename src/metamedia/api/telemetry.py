"""The event bus and the metrics of one app, for one server process or one of several.

One process (the default) keeps both in memory. With several processes over one data directory
(`metamedia serve --workers N`), events go through the shared log under `<data_dir>/run/` so every
process's `/events` subscribers see every event, and metrics use prometheus_client's multiprocess
files so `/metrics` on any process reports the whole server.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..coord.events_log import EventLog, events_log_path
from ..coord.metrics_dir import multiprocess_metrics_dir
from ..settings import Settings
from .events import EventBus
from .events_shared import SharedEventBus
from .metrics import ApiMetrics


def worker_count(settings: Settings, workers: int | None = None) -> int:
    """How many server processes serve this data directory (`workers`, else the settings'; 0 = cores)."""
    if workers is None:
        return settings.resolved_workers
    return workers if workers > 0 else len(os.sched_getaffinity(0))


def events_and_metrics(
    settings: Settings, data_dir: str | os.PathLike[str], workers: int, engine_of: Callable[[], Any]
) -> tuple[EventBus, ApiMetrics]:
    """The app's event bus and metrics: in memory for one process, shared for several."""
    several = workers > 1
    metrics = ApiMetrics(engine_of, multiprocess_dir=multiprocess_metrics_dir() if several else None)

    def count(event: Any) -> None:
        metrics.learning_events.labels(event.kind).inc()

    if not several:
        return EventBus(settings.events_buffer, on_publish=count), metrics
    log = EventLog(events_log_path(Path(data_dir)), capacity=settings.events_buffer)
    return SharedEventBus(log, on_publish=count), metrics
