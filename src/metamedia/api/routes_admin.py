"""Admin routes (scope `admin`): item create/update/delete, ingest, snapshot, verify, repair; and /ready.

Every write commits to the store of record before it is indexed and answered, so an acknowledged
write survives a crash: on restart the index is repaired from the store (see app lifespan).
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Query, Request, status
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StrictInt

from ..engine import Engine
from ..errors import InvalidInput, NotFound, public_detail
from ..settings import Settings
from .auth import require
from .processes import process_status

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require("admin"))])
ops_router = APIRouter(tags=["ops"])

# A plain file name: no separators, and not "." or ".." (it may not start with a dot at all).
UPLOAD_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
MAX_LISTED = 100

Text = Annotated[str, Field(max_length=500)]


class ItemIn(BaseModel):
    """A catalog item written through the API (fields as in the JSON Lines catalog format)."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=500)
    media_type: Literal["movie", "tv"] = "movie"
    original_title: Text | None = None
    overview: Annotated[str, Field(max_length=20_000)] | None = None
    tagline: Text | None = None
    genres: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=30)
    keywords: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=200)
    release_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    year: Annotated[int, Field(ge=1800, le=2100)] | None = None
    runtime: Annotated[int, Field(ge=1, le=1000)] | None = None
    vote_average: Annotated[FiniteFloat, Field(ge=0, le=10)] | None = None
    vote_count: Annotated[int, Field(ge=0, le=10**9)] | None = None
    popularity: Annotated[FiniteFloat, Field(ge=0, le=1e9)] | None = None
    language: Annotated[str, Field(max_length=16)] | None = None
    poster_path: Text | None = None
    tmdb_id: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | None = None
    imdb_id: Annotated[str, Field(pattern=r"^tt\d{1,10}$")] | None = None
    movielens_id: Annotated[StrictInt, Field(ge=1, le=2**31 - 1)] | None = None
    companies: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    collection: Text | None = None
    countries: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=50)


class IngestPathIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=1024, description="File name relative to the ingest folder")


def engine_of(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


def _after_write(request: Request, kind: str, data: dict[str, Any]) -> None:
    """Writes are announced on the event bus (the engine already invalidated cached results)."""
    request.app.state.events.publish(kind, data)


# Item writes run in threads of their own (at most this many at once), not in the request threadpool
# shared with every read: under a read-heavy load (50 clients, 45 of them reading) the pool's 40
# tokens can all be held by searches, and a write would wait for one before its own work began.
WRITE_THREADS = anyio.CapacityLimiter(16)


def _put_item(request: Request, fields: dict[str, Any], item_id: int | None) -> dict[str, Any]:
    item = engine_of(request).put_item(fields, item_id)
    kind = "item.created" if item_id is None else "item.updated"
    _after_write(request, kind, {"item_id": item.id, "title": item.title})
    return item.to_dict()


@router.post("/items", status_code=status.HTTP_201_CREATED, summary="Create a catalog item")
async def create_item(body: ItemIn, request: Request) -> dict[str, Any]:
    fields = body.model_dump(exclude_none=True)
    with engine_of(request).writing():  # searches make room from now, not once the thread starts
        return await anyio.to_thread.run_sync(_put_item, request, fields, None, limiter=WRITE_THREADS)


@router.put("/items/{item_id}", summary="Replace an item's API-written fields (they override dataset values)")
async def update_item(
    item_id: Annotated[int, PathParam(ge=1, le=2**62)], body: ItemIn, request: Request
) -> dict[str, Any]:
    fields = body.model_dump(exclude_none=True)
    with engine_of(request).writing():  # searches make room from now, not once the thread starts
        return await anyio.to_thread.run_sync(_put_item, request, fields, item_id, limiter=WRITE_THREADS)


@router.delete("/items/{item_id}", summary="Delete an item from the store and the index")
def delete_item(item_id: Annotated[int, PathParam(ge=1, le=2**62)], request: Request) -> dict[str, Any]:
    engine_of(request).delete_item(item_id)
    _after_write(request, "item.deleted", {"item_id": item_id})
    return {"deleted": item_id}


def _ingest_dir(request: Request) -> Path:
    api: Settings = request.app.state.settings
    return Path(api.ingest_dir or Path(engine_of(request).settings.data_dir) / "imports").resolve()


def _ingest(request: Request, path: Path) -> dict[str, Any]:
    report = engine_of(request).ingest([path])
    _after_write(request, "catalog.ingested", {"file": path.name, "changed": len(report.changed_ids)})
    out = report.to_dict()
    out["rejects"] = out["rejects"][:MAX_LISTED]
    out["files"] = [{**f, "path": Path(f["path"]).name} for f in out["files"]]
    public: dict[str, Any] = public_detail(out)  # type: ignore[assignment]  # rejects may quote a path
    return public


@router.post("/ingest", summary="Ingest a catalog file from the server's ingest folder")
def ingest_path(body: IngestPathIn, request: Request) -> dict[str, Any]:
    root = _ingest_dir(request)
    if "\x00" in body.path:
        raise InvalidInput("path contains a NUL byte")
    target = (root / body.path).resolve()
    if not target.is_relative_to(root):
        raise InvalidInput("path must stay inside the server's ingest folder", {"ingest_dir": root.name})
    if not target.is_file():
        raise NotFound(f"no file {body.path!r} in the ingest folder")
    return _ingest(request, target)


@router.post(
    "/ingest/upload",
    summary="Ingest an uploaded catalog (JSON Lines or a known CSV format) sent as the raw body",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
    },
)
async def ingest_upload(
    request: Request,
    name: Annotated[
        str, Query(pattern=UPLOAD_NAME.pattern, description="Stable name: re-uploads replace it")
    ] = "upload.jsonl",
) -> dict[str, Any]:
    folder = Path(engine_of(request).settings.data_dir) / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / name
    if target.parent != folder:  # the pattern already refuses this; never write outside the folder
        folder.rmdir()
        raise InvalidInput("upload name must be a plain file name")
    try:
        with target.open("wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        if target.stat().st_size == 0:
            raise InvalidInput("empty upload")
        return await run_in_threadpool(_ingest, request, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@router.post("/snapshot", summary="Write index snapshots now")
def snapshot(request: Request) -> dict[str, Any]:
    return {"snapshots": engine_of(request).snapshot_vectors()}


@router.post("/backup", summary="Back up every vector collection into data_dir/backups/<time>")
def backup(request: Request) -> dict[str, Any]:
    engine = engine_of(request)
    dest = Path(engine.settings.data_dir) / "backups" / time.strftime("%Y%m%dT%H%M%S")
    report = engine.backup_vectors(dest)
    return {"backup": dest.name, "report": report}


@router.get("/verify", summary="Compare the media index with the store of record")
def verify(request: Request) -> dict[str, Any]:
    report = engine_of(request).check_index()
    return {k: (v[:MAX_LISTED] if isinstance(v, list) else v) for k, v in report.items()}


@router.post("/repair", summary="Bring the media index in line with the store")
def repair(request: Request) -> dict[str, Any]:
    out = engine_of(request).repair_index()
    if out.get("repaired"):
        _after_write(request, "index.repaired", out)
    return out


@ops_router.get("/ready", summary="200 when the engine is open and the index agrees with the store, else 503")
def ready(request: Request) -> JSONResponse:
    engine: Engine | None = getattr(request.app.state, "engine", None)
    if engine is None or not getattr(request.app.state, "started", False):
        return JSONResponse({"ready": False, "reason": "starting"}, status_code=503)
    loader = getattr(request.app.state, "loader", None)
    if loader is not None and not loader.ready.is_set():
        status = loader.status()  # a failed first load says so (and why) rather than "loading"
        loading = {"ready": False, "reason": "failed" if status["state"] == "failed" else "loading", "startup": status}
        return JSONResponse({**loading, "process": process_status(request.app.state)}, status_code=503)
    try:
        items, indexed = engine.count(), int(engine.media.count())
        if not engine.media_index_present():
            return JSONResponse({"ready": False, "reason": "media index missing"}, status_code=503)
    except Exception:  # a closed or unreachable store means not ready, whatever the cause
        return JSONResponse({"ready": False, "reason": "store unavailable"}, status_code=503)
    limiter = request.app.state.limiter
    limiter_ok = limiter.ping()
    ok = items == indexed and limiter_ok
    body = {
        "ready": ok,
        "items": items,
        "indexed": indexed,
        "consistent": items == indexed,
        "rate_limit_storage": limiter_ok,
        "rate_limit_backend": limiter.backend,
        "process": process_status(request.app.state),
    }
    return JSONResponse(body, status_code=200 if ok else 503)
