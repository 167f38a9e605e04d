"""Search, items, similar items, health and stats."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ..domain.limits import SEARCH_MAX_K
from ..engine import Engine
from ..search.cache import MemoryResultCache
from .processes import process_status

router = APIRouter(tags=["catalog"])


def engine_of(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _json(fn: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> Response:
    """Call the engine and render its (plain JSON) answer in the worker thread, skipping FastAPI's
    generic encoder walk: the hot search paths spend less time holding the GIL on the event loop."""
    body = json.dumps(fn(*args, **kwargs), separators=(",", ":"), allow_nan=False)
    return Response(body, media_type="application/json")


@router.get("/search", summary="Natural-language search with filters; every result carries reasons")
async def search(
    request: Request,
    q: Annotated[str, Query(max_length=500, description="Free-text query, e.g. 'dark 90s thrillers'")] = "",
    k: Annotated[int, Query(ge=1, le=SEARCH_MAX_K)] = 10,
    genre: Annotated[list[str] | None, Query(description="Required genre(s); repeat for several")] = None,
    year_min: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    year_max: Annotated[int | None, Query(ge=1800, le=2100)] = None,
    rating_min: Annotated[float | None, Query(ge=0, le=10)] = None,
    runtime_min: Annotated[int | None, Query(ge=1, le=1000)] = None,
    runtime_max: Annotated[int | None, Query(ge=1, le=1000)] = None,
    type: Annotated[Literal["movie", "tv"] | None, Query()] = None,
    ef: Annotated[int | None, Query(ge=1, le=4096, description="HNSW efSearch for this query")] = None,
    trend: bool = True,
    diversity: bool = True,
) -> Response:
    engine = engine_of(request)
    options: dict[str, Any] = dict(
        genres=genre,
        year_min=year_min,
        year_max=year_max,
        rating_min=rating_min,
        runtime_min=runtime_min,
        runtime_max=runtime_max,
        media_type=type,
        ef=ef,
        trend=trend,
        diversity=diversity,
    )
    cached = engine.cached_search_text(q, k, **options)  # a repeated search needs no worker thread
    if cached is not None:
        return Response(cached, media_type="application/json")
    return await run_in_threadpool(_search_json, engine, q, k, options)


def _search_json(engine: Engine, q: str, k: int, options: dict[str, Any]) -> Response:
    """A new search, rendered in the worker thread; the JSON text the result cache just made of the
    answer is sent as is (the same bytes `_json` would encode, without encoding them twice)."""
    result = engine.search(q, k, **options)
    cache = engine.result_cache
    body = cache.text_of(result) if isinstance(cache, MemoryResultCache) else None
    if body is None:
        body = json.dumps(result, separators=(",", ":"), allow_nan=False)
    return Response(body, media_type="application/json")


@router.get("/items/{item_id}", summary="One catalog item")
def get_item(request: Request, item_id: Annotated[int, Path(ge=1, le=2**62)]) -> dict[str, Any]:
    return engine_of(request).get_item(item_id).to_dict()


@router.get("/items/{item_id}/similar", summary="More like this")
async def similar(
    request: Request,
    item_id: Annotated[int, Path(ge=1, le=2**62)],
    k: Annotated[int, Query(ge=1, le=SEARCH_MAX_K)] = 10,
    ef: Annotated[int | None, Query(ge=1, le=4096)] = None,
    diversity: bool = False,
) -> Response:
    return await run_in_threadpool(_json, engine_of(request).similar, item_id, k, ef=ef, diversity=diversity)


@router.get("/catalog/index", summary="The catalog index for the offline web app (int8 vectors, by generation)")
async def catalog_index(
    request: Request,
    since: Annotated[int | None, Query(ge=0, description="Catalog generation the client holds")] = None,
    after: Annotated[float | None, Query(ge=0, description="Largest updated_at the client holds")] = None,
) -> Response:
    return await run_in_threadpool(_json, engine_of(request).offline_index, since, after)


@router.get("/health", summary="Liveness and index/store consistency")
def health(request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    items, indexed = engine.count(), int(engine.media.count())
    out: dict[str, Any] = {"status": "ok", "items": items, "indexed": indexed, "consistent": items == indexed}
    out["process"] = process_status(request.app.state)
    loader = getattr(request.app.state, "loader", None)
    if loader is not None:
        out["startup"] = loader.status()
    return out


@router.get("/stats", summary="Catalog and index statistics")
async def stats(request: Request) -> dict[str, Any]:
    return await run_in_threadpool(engine_of(request).stats)
