"""HTTP routes of the vector store: thin adapters over metamedia.vectors.VectorDB.

The database is the engine's `media_db` (faiss, or pgvector when the media index lives there). Errors are MetamediaError subclasses, turned
into {"error", "detail"} bodies by the app's global handler; malformed bodies (including NaN or
infinite numbers, which Python's JSON parser lets through) are refused with 422 by pydantic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Request, status
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from ..engine import Engine
from ..errors import DimensionMismatch
from ..ports import VectorDatabase
from ..vectors import CollectionConfig
from ..vectors.base import MAX_BATCH, MAX_DIM, MAX_EF, MAX_EF_CONSTRUCTION, MAX_K, MAX_M

router = APIRouter(prefix="/collections", tags=["vectors"])

PointId = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Vector = Annotated[list[FiniteFloat], Field(min_length=1, max_length=MAX_DIM)]


class CollectionIn(BaseModel):
    """A new collection (see metamedia.vectors.CollectionConfig for the meaning of each field)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    dim: int = Field(ge=1, le=MAX_DIM)
    metric: Literal["cosine", "l2", "dot", "manhattan"] = "cosine"
    m: int = Field(16, ge=2, le=MAX_M)
    ef_construction: int = Field(200, ge=1, le=MAX_EF_CONSTRUCTION)
    ef_search: int = Field(64, ge=1, le=MAX_EF)
    precision: Literal["float32", "float16", "int8", "pq"] = "float32"
    pq_m: int = Field(0, ge=0, le=MAX_DIM)
    rerank: int = Field(0, ge=0, le=100)
    train_size: int = Field(0, ge=0, le=10_000_000)
    exact_max: int = Field(0, ge=0, le=10_000_000)


class PointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: PointId
    vector: Vector
    payload: dict[str, Any] | None = None


class UpsertIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    points: list[PointIn] = Field(min_length=1, max_length=MAX_BATCH)


class DeleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[PointId] = Field(min_length=1, max_length=MAX_BATCH)


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vector: Vector
    k: int = Field(10, ge=1, le=MAX_K)
    ef: int | None = Field(None, ge=1, le=MAX_EF)
    filter: dict[str, Any] | None = None
    threshold: FiniteFloat | None = None


def _db(request: Request) -> VectorDatabase:
    """The vector database that holds the media index: faiss, or pgvector in the store of record."""
    engine: Engine = request.app.state.engine
    return engine.media_db


@router.post("", status_code=status.HTTP_201_CREATED)
def create_collection(body: CollectionIn, request: Request) -> dict[str, Any]:
    """Create a collection; 409 if the name is taken."""
    db = _db(request)
    collection = db.create_collection(CollectionConfig(**body.model_dump()))
    return db.describe(collection.name)


@router.get("")
def list_collections(request: Request) -> dict[str, Any]:
    """Every collection's configuration."""
    return {"collections": [config.to_dict() for config in _db(request).list_collections()]}


@router.get("/{name}")
def describe_collection(name: str, request: Request) -> dict[str, Any]:
    """Configuration and statistics (count, tombstones, bytes per vector, ...)."""
    return _db(request).describe(name)


@router.delete("/{name}")
def drop_collection(name: str, request: Request) -> dict[str, Any]:
    """Delete a collection with its points and files."""
    _db(request).drop_collection(name)
    return {"dropped": name}


@router.post("/{name}/points")
def upsert_points(name: str, body: UpsertIn, request: Request) -> dict[str, Any]:
    """Insert or replace a batch of points; answered after the store commit."""
    collection = _db(request).get_collection(name)
    dim = collection.config.dim
    wrong = [p.id for p in body.points if len(p.vector) != dim]
    if wrong:
        raise DimensionMismatch(
            f"{len(wrong)} vector(s) do not have dimension {dim} (collection {name!r})", {"ids": wrong[:100]}
        )
    ids = [p.id for p in body.points]
    vectors = np.asarray([p.vector for p in body.points], dtype=np.float32)
    collection.upsert(ids, vectors, [p.payload or {} for p in body.points])
    version = getattr(collection, "version", None)  # faiss counts its writes; pgvector has no counter
    return {"upserted": len(ids), "count": collection.count(), "version": version}


@router.delete("/{name}/points")
def delete_points(name: str, body: DeleteIn, request: Request) -> dict[str, Any]:
    """Delete points by id; unknown ids are ignored."""
    collection = _db(request).get_collection(name)
    deleted = collection.delete(body.ids)
    return {"deleted": deleted, "count": collection.count()}


@router.get("/{name}/points/{point_id}")
def get_point(name: str, point_id: PointId, request: Request) -> dict[str, Any]:
    """One point's vector and payload; 404 if absent."""
    vector, payload = _db(request).get_collection(name).get(point_id)
    return {"id": point_id, "vector": vector.tolist(), "payload": payload}


@router.post("/{name}/search")
def search(name: str, body: SearchIn, request: Request) -> dict[str, Any]:
    """Nearest points to `vector`, best first, with the plan that ran."""
    collection = _db(request).get_collection(name)
    query = np.asarray(body.vector, dtype=np.float32)
    hits = collection.search(query, body.k, ef=body.ef, filter=body.filter, threshold=body.threshold)
    return {"hits": [{"id": h.id, "score": h.score} for h in hits]}


@router.post("/{name}/snapshot")
def snapshot(name: str, request: Request) -> dict[str, Any]:
    """Write the collection's snapshot now."""
    path = _db(request).get_collection(name).snapshot()
    return {"snapshot": path.name if isinstance(path, Path) else None}  # pgvector: durable, no files
