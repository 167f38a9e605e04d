"""The FastAPI application factory: routers, auth, limits, metrics, events, logging."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response

from .. import __version__
from ..coord.metrics_dir import process_exiting
from ..engine import Engine
from ..settings import Settings
from ..startup import StartupLoader
from ..web.routes import PAGES
from ..web.routes import router as web_router
from .auth import authenticate_request, check_auth_mode, require, require_by_method
from .errors import install_error_handlers
from .events import router as events_router
from .guards import LoopbackGuard, RequestBodyGuard
from .keys import KeyStore
from .logging import configure_json_logging
from .middleware import BodySizeLimitMiddleware, LoadingGate, RequestContextMiddleware
from .processes import ServerProcess
from .ratelimit import RateLimiter
from .routes_admin import ops_router
from .routes_admin import router as admin_router
from .routes_bandit import router as bandit_router
from .routes_catalog import router as catalog_router
from .routes_memory import router as memory_router
from .routes_users import router as users_router
from .routes_vectors import router as vectors_router
from .telemetry import events_and_metrics, worker_count

log = logging.getLogger("metamedia.api")
UPLOAD_PATHS = ("/admin/ingest/upload",)


GIL_SWITCH_INTERVAL_S = 0.001


def create_app(
    settings: Settings | None = None, *, engine: Engine | None = None, workers: int | None = None
) -> FastAPI:
    """Build the app. With no engine given, one is opened at startup (and the demo loaded if empty).

    `settings` configure the service (and the engine opened at startup); a given engine keeps its
    own. Refuses (InvalidInput) to run without authentication unless asked for and bound to loopback.
    `workers` (default: the settings') > 1: this is one of several server processes on one data
    directory; events and metrics are then shared between them (api/telemetry.py).
    """
    settings = settings or (engine.settings if engine else Settings.from_env())
    api = settings
    check_auth_mode(api, settings.host)
    # The event loop and each request's worker thread hand the interpreter lock back and forth at
    # every hop; at the default 5 ms switch interval a hop waited ~60 ms p50 behind CPU-bound search
    # threads in the 50-client mix (~25 ms at 1 ms).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if api.log_json:
            configure_json_logging(settings.log_level)
        owned = engine is None
        process = app.state.process = ServerProcess(settings) if owned else None
        # with several workers, only the primary loads; the others open once its first load is done
        primary = await process.wait_turn() if process is not None else True
        if process is not None and process.stopping:  # shut down while waiting: open nothing
            yield
            process.close(None)
            return
        eng = engine or Engine(settings)
        loader = None
        if owned:  # demo load, index repair, model warm-up: in the background, /health answers meanwhile
            demo = Path(settings.demo_catalog) if settings.demo_catalog and primary else None
            loader = app.state.loader = StartupLoader(
                eng, demo_catalog=demo, log_every=settings.progress_log_seconds, repair=primary,
                **(process.loader_options(primary) if process is not None else {}),
            )  # fmt: skip
            loader.start()
            if not primary:  # another worker serves meanwhile: take connections once this one can answer
                await run_in_threadpool(loader.finished.wait)
        else:
            await run_in_threadpool(eng.embedder.encode_query, "warm up")  # load the model before traffic
        app.state.engine = eng
        eng.listeners.append(app.state.events.publish)
        if process is not None:
            process.serve(eng)  # the primary's learner schedule
        app.state.keys = KeyStore(eng.db, cache_seconds=settings.key_cache_seconds)
        if not api.auth_disabled and not app.state.keys.has_active_keys():
            log.warning(
                "no active API keys: every request except /health and /ready gets 401 (metamedia keys create)"
            )
        app.state.started = True
        try:
            yield
        finally:
            app.state.started = False
            app.state.events.close()  # stop tailing the shared log (a no-op for one process)
            process_exiting(metrics.multiprocess_dir)
            if loader is not None:
                await run_in_threadpool(loader.stop)
            if process is not None:
                process.close(eng)

    app = FastAPI(
        title="metamedia",
        version=__version__,
        description="Semantic search and recommendations over a movie/TV catalog.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.started = False
    app.state.authenticate = authenticate_request  # what the MCP endpoint authenticates with
    app.state.limiter = RateLimiter.for_settings(api)
    app.state.events, app.state.metrics = events_and_metrics(
        settings,
        (engine.settings if engine else settings).data_dir,
        worker_count(settings, workers),
        lambda: getattr(app.state, "engine", None),
    )
    metrics = app.state.metrics
    if engine is not None:
        app.state.engine = engine
        engine.listeners.append(app.state.events.publish)
        app.state.keys = KeyStore(engine.db, cache_seconds=settings.key_cache_seconds)
    install_error_handlers(app)

    # /health stays open for liveness probes; everything else in the catalog router needs `read`.
    app.include_router(
        catalog_router, dependencies=[Depends(require_by_method("read", "admin", open_paths=("/health",)))]
    )
    app.include_router(admin_router)
    app.include_router(ops_router)
    app.include_router(events_router)
    app.include_router(users_router)
    app.include_router(memory_router)

    app.include_router(bandit_router, dependencies=[Depends(require_by_method("read", "admin"))])
    app.include_router(vectors_router)  # scopes per route: a collection search is a read

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(require("admin"))])
    def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    app.include_router(web_router)  # the web app: pages and static files (docs/web.md)

    app.add_middleware(RequestBodyGuard, timeout=api.request_body_timeout_s, skip_json=UPLOAD_PATHS)
    app.add_middleware(
        BodySizeLimitMiddleware,
        limit_for=lambda path: api.max_upload_bytes if path in UPLOAD_PATHS else api.max_body_bytes,
    )
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(api.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    # during the first load: liveness, readiness and the web app's pages and files still answer
    app.add_middleware(
        LoadingGate, open_paths=("/health", "/ready", *PAGES), open_prefixes=("/static/", "/title/", "/models/", "/vendor/", "/sw.js")
    )
    if api.auth_disabled:
        app.add_middleware(LoopbackGuard)  # the demo: no foreign Host/Origin, no simple cross-site writes
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    try:
        # deferred: the `mcp` package is the optional extra metamedia[mcp]
        from ..mcp.http import mount_mcp

        mount_mcp(app)  # MCP at /mcp, same keys/scopes, started in this app's lifespan
    except ImportError:  # pragma: no cover - the mcp extra is not installed
        log.debug("MCP endpoint not available (install metamedia[mcp])")
    return app
