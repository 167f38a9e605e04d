"""Prometheus metrics of several server processes: one folder of per-process files, summed at scrape time.

prometheus_client's multiprocess mode keeps each process's counters, histograms and gauges in
memory-mapped files under `PROMETHEUS_MULTIPROC_DIR`; a scrape on any process merges every file.
The variable must be set before prometheus_client is first imported in a process (it picks the
value store at import time), so the process that starts the workers calls
`prepare_multiprocess_metrics(data_dir)` and puts the returned variables into the workers'
environment. The folder is emptied there: files of a previous run would otherwise be summed in.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
from pathlib import Path

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"

log = logging.getLogger("metamedia.coord")


def metrics_dir(data_dir: str | os.PathLike[str]) -> Path:
    """The per-process metrics files of a data directory's server."""
    return Path(data_dir) / "run" / "metrics"


def prepare_multiprocess_metrics(data_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Empty (or create) the metrics folder and return the environment the workers need.

    Call it once in the supervising process before any worker starts, never while workers run.
    """
    folder = metrics_dir(data_dir)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=0o700)
    return {ENV_VAR: str(folder.resolve())}


def multiprocess_metrics_dir() -> Path | None:
    """This process's metrics folder when prometheus_client runs in multiprocess mode, else None.

    Warns (and answers None: this process reports only itself) when the variable is missing or was
    set after prometheus_client had been imported.
    """
    # deferred: prometheus_client must not be imported before a caller had the chance to set ENV_VAR
    from prometheus_client import values

    raw = os.environ.get(ENV_VAR)
    shared = bool(getattr(values.ValueClass, "_multiprocess", False))
    if not raw:
        log.warning("%s is not set: /metrics reports this server process only", ENV_VAR)
        return None
    if not shared or not Path(raw).is_dir():
        log.warning(
            "%s is set but prometheus_client was imported before it (or the folder is missing): "
            "/metrics reports this server process only",
            ENV_VAR,
        )
        return None
    return Path(raw)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def forget_dead_processes(folder: Path) -> list[int]:
    """Drop the live gauges of processes that are gone (a worker that crashed never said goodbye)."""
    # deferred: see multiprocess_metrics_dir
    from prometheus_client import multiprocess

    dead: set[int] = set()
    for path in glob.glob(str(folder / "gauge_live*_*.db")):
        tail = Path(path).stem.rsplit("_", 1)[-1]
        if tail.isdigit() and not _alive(int(tail)):
            dead.add(int(tail))
    for pid in sorted(dead):
        multiprocess.mark_process_dead(pid, str(folder))
    return sorted(dead)


def process_exiting(folder: Path | None) -> None:
    """This process stops serving: its live gauges leave the sums (its counters stay counted)."""
    if folder is None:
        return
    # deferred: see multiprocess_metrics_dir
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(os.getpid(), str(folder))
