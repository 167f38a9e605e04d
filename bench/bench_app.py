"""metamedia's real HTTP app plus one minimal endpoint, for measuring what our request path costs.

`/bench/minimal` sits behind the same middleware stack (added to the same app, so the same order:
request context + JSON log + metrics, body limit) and the same auth + rate-limit dependency as
`/search`, and returns a constant. Server CPU per request on it, beside cached `/search` in the same
run, shows what the search route itself costs. Configured from METAMEDIA_* like `metamedia serve`.

    python bench/bench_app.py PORT [CATALOG]
"""

from __future__ import annotations

import logging
import sys

import uvicorn
from fastapi import Depends, FastAPI

from metamedia.api.app import create_app
from metamedia.api.auth import require_by_method
from metamedia.api.workers import serve, worker_app
from metamedia.settings import Settings


def add_minimal(app: FastAPI) -> None:
    @app.get("/bench/minimal", dependencies=[Depends(require_by_method("read", "admin"))])
    def minimal() -> dict[str, bool]:
        return {"ok": True}


def bench_worker_app() -> FastAPI:
    """The app factory of each worker when METAMEDIA_WORKERS > 1 (uvicorn imports it by name)."""
    return worker_app(add_minimal)


def main() -> None:
    overrides: dict[str, object] = {"port": int(sys.argv[1])}
    if len(sys.argv) > 2:
        overrides["demo_catalog"] = sys.argv[2]
    cfg = Settings.from_env(**overrides)
    logging.getLogger("metamedia").setLevel(logging.INFO)
    if not cfg.log_json:
        logging.getLogger("metamedia").addHandler(logging.StreamHandler())
    if cfg.resolved_workers > 1:  # like `metamedia serve --workers N`
        serve(cfg, factory="bench_app:bench_worker_app")
        return
    app = create_app(cfg.replace(workers=1))
    add_minimal(app)
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=cfg.log_level, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
