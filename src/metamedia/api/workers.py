"""`metamedia serve`: one process, or N behind one port under uvicorn's supervisor.

uvicorn restarts a worker that dies; each worker is a fresh interpreter (spawned), so the parent
hands it the exact Settings the command line resolved through one environment variable (never
argv, which any local user can read, and never a log line: it may hold `redis_url`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_origin, get_type_hints

import uvicorn
from fastapi import FastAPI

from ..errors import InvalidInput
from ..settings import Settings
from .app import create_app
from .auth import check_auth_mode
from .serving import proxy_options

SETTINGS_ENV = "METAMEDIA_SERVE_SETTINGS"
FACTORY = "metamedia.api.workers:worker_app"
WORKER_HEALTHCHECK_S = 30


def settings_to_json(settings: Settings) -> str:
    """Every field of `settings`, as JSON (paths as strings, tuples as lists)."""
    values = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)}
    return json.dumps(values, default=str)


def settings_from_json(raw: str) -> Settings:
    """The Settings `settings_to_json` wrote (InvalidInput when it is not that)."""
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{SETTINGS_ENV} is not JSON: {exc.msg}") from None
    if not isinstance(values, dict):
        raise InvalidInput(f"{SETTINGS_ENV} must be a JSON object")
    hints = get_type_hints(Settings)
    for name, value in list(values.items()):
        if name not in hints:
            raise InvalidInput(f"unknown setting {name!r} in {SETTINGS_ENV}")
        if hints[name] is Path:
            values[name] = Path(value)
        elif get_origin(hints[name]) is tuple:
            values[name] = tuple(value)
    return Settings(**values)


def _log_setup(settings: Settings) -> None:
    logging.getLogger("metamedia").setLevel(logging.INFO)
    if not settings.log_json:  # JSON logging installs its own handler at startup; one line per event
        logging.getLogger("metamedia").addHandler(logging.StreamHandler())


def worker_app(customize: Callable[[FastAPI], None] | None = None) -> FastAPI:
    """The app factory each worker calls: the parent's Settings, rebuilt in this process."""
    raw = os.environ.get(SETTINGS_ENV)
    if raw is None:
        raise InvalidInput(f"{SETTINGS_ENV} is not set: start workers with `metamedia serve --workers N`")
    settings = settings_from_json(raw)
    _log_setup(settings)
    app = create_app(settings)
    if customize is not None:
        customize(app)
    return app


def serve(settings: Settings, *, factory: str = FACTORY, **uvicorn_options: Any) -> None:
    """Serve until stopped: in this process when `workers` is 1, else under uvicorn's supervisor
    with `workers` processes (0 = one per CPU core), each building its app with `factory`."""
    workers = settings.resolved_workers
    options: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        **proxy_options(settings),
        **uvicorn_options,
    )
    check_auth_mode(settings, settings.host)  # here, not once per worker
    settings = settings.replace(workers=workers)  # every process sees the count, never 0
    if workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    os.environ[SETTINGS_ENV] = settings_to_json(settings)
    # A worker answers the supervisor's ping from a thread; while it imports torch on a busy machine
    # that thread may wait seconds for the interpreter lock, and uvicorn's default 5 s kills it.
    options.setdefault("timeout_worker_healthcheck", WORKER_HEALTHCHECK_S)
    uvicorn.run(factory, factory=True, workers=workers, **options)
