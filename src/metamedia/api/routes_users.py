"""HTTP adapter of the recommendation layer: interactions, recommendations and profiles per user.

A key bound to a user may only reach that user's routes (``require(..., user_param="user_id")``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..domain.limits import RECOMMEND_MAX_K
from ..recommend.preferences import (
    list_interactions,
    most_active_users,
    read_preferences,
    undo_interaction,
    write_preferences,
)
from .auth import Principal, require

router = APIRouter(tags=["users"])

Kind = Literal["view", "click", "watch", "rewatch", "rating", "like", "dislike", "skip", "add_to_list"]
Algorithm = Literal[
    "auto", "fused", "popularity", "trending", "content", "itemknn", "als", "ease", "graph", "hybrid"
]


class InteractionIn(BaseModel):
    """One thing a user did with an item."""

    model_config = ConfigDict(extra="forbid")

    item_id: int = Field(ge=1, le=2**62, description="Catalog item id.")
    kind: Kind
    value: float | None = Field(default=None, description="The rating, for kind 'rating'.")
    scale: Literal["five", "ten"] | None = Field(default=None, description="Rating scale: 0.5-5 or 1-10.")
    completion: float | None = Field(default=None, ge=0.0, le=1.0, description="Watched share, 0..1.")
    watch_seconds: float | None = Field(default=None, ge=0.0)
    context: dict[str, str | int | float | bool | None] | None = Field(
        default=None, description="hour (0-23), weekday (0-6, Monday 0), device, session_minutes, ..."
    )
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    timestamp: float | None = Field(default=None, description="Unix seconds; default now.")
    decision_id: str | None = Field(default=None, description="decision_id of the recommendation it answers.")


def _recs(request: Request) -> Any:
    return request.app.state.engine.recs


@router.post(
    "/users/{user_id}/interactions",
    status_code=201,
    dependencies=[Depends(require("write", user_param="user_id"))],
)
def post_interaction(
    user_id: str, body: InteractionIn, request: Request, response: Response
) -> dict[str, Any]:
    """Record an interaction; a retried request with the same idempotency key answers 200 with the stored one."""
    stored = _recs(request).record_interaction(user_id, **body.model_dump())
    if stored.get("duplicate"):
        response.status_code = 200
    return dict(stored)


@router.get("/users/{user_id}/recommendations", dependencies=[Depends(require("read", user_param="user_id"))])
def get_recommendations(
    user_id: str,
    request: Request,
    k: Annotated[int, Query(ge=1, le=RECOMMEND_MAX_K)] = 10,
    algorithm: Algorithm = "auto",
    hour: Annotated[int | None, Query(ge=0, le=23)] = None,
    weekday: Annotated[int | None, Query(ge=0, le=6)] = None,
    device: Annotated[str | None, Query(max_length=40)] = None,
    session_minutes: Annotated[float | None, Query(ge=0, le=1440)] = None,
    genres: Annotated[list[str] | None, Query()] = None,
    rating_min: Annotated[float | None, Query(ge=0, le=10)] = None,
    runtime_max: Annotated[int | None, Query(ge=1, le=1000)] = None,
    media_type: Literal["movie", "tv"] | None = None,
    query: Annotated[str | None, Query(min_length=1, max_length=500)] = None,
    similar_to: Annotated[
        int | None, Query(ge=1, le=2**62, description="Fuse with items like this one")
    ] = None,
) -> dict[str, Any]:
    """The user's k best unseen items with reasons; "auto" lets the bandit pick the algorithm."""
    context = {
        name: value
        for name, value in (
            ("hour", hour), ("weekday", weekday), ("device", device), ("session_minutes", session_minutes)
        )
        if value is not None
    }  # fmt: skip
    return dict(
        _recs(request).recommend(
            user_id,
            k,
            algorithm=algorithm,
            context=context or None,
            genres=genres,
            rating_min=rating_min,
            runtime_max=runtime_max,
            media_type=media_type,
            query=query,
            similar_to=similar_to,
        )  # fmt: skip
    )


@router.get("/users/{user_id}/profile", dependencies=[Depends(require("read", user_param="user_id"))])
def get_profile(user_id: str, request: Request) -> dict[str, Any]:
    """Top genres, confidence, interaction counts by kind and recent signals (404 for unknown users)."""
    return dict(_recs(request).profile(user_id))


class PreferencesIn(BaseModel):
    """Stated preferences; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    blocked_genres: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=30, description="The whole list of genres never to recommend."
    )
    max_runtime: int | None = Field(default=None, ge=1, le=1000, description="Longest runtime, minutes.")
    clear_max_runtime: bool = Field(default=False, description="Remove the runtime limit.")


@router.get("/users/{user_id}/preferences", dependencies=[Depends(require("read", user_param="user_id"))])
def get_preferences(user_id: str, request: Request) -> dict[str, Any]:
    """Blocked genres and runtime limit, set by the user or learned by memory, with reasons."""
    return read_preferences(request.app.state.engine.memory.users, user_id)


@router.put("/users/{user_id}/preferences", dependencies=[Depends(require("write", user_param="user_id"))])
def put_preferences(user_id: str, body: PreferencesIn, request: Request) -> dict[str, Any]:
    """Set blocked genres and the runtime limit; the next recommendations obey them."""
    return write_preferences(
        request.app.state.engine.memory.users, user_id, blocked_genres=body.blocked_genres,
        max_runtime=body.max_runtime, clear_max_runtime=body.clear_max_runtime,
    )  # fmt: skip


@router.get("/users/{user_id}/interactions", dependencies=[Depends(require("read", user_param="user_id"))])
def get_interactions(
    user_id: str, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict[str, Any]:
    """The user's interactions, newest first, with item titles."""
    rows = list_interactions(_recs(request).db, user_id, limit)
    items = request.app.state.engine.store.get_items([r["item_id"] for r in rows])
    for r in rows:
        r["title"] = items[r["item_id"]].title if r["item_id"] in items else None
    return {"user_id": user_id, "interactions": rows}


@router.delete(
    "/users/{user_id}/interactions/{interaction_id}",
    dependencies=[Depends(require("write", user_param="user_id"))],
)
def delete_interaction(
    user_id: str, interaction_id: Annotated[int, Path(ge=1, le=2**62)], request: Request
) -> dict[str, Any]:
    """Undo one interaction: it is deleted and the user's preference vector replayed without it."""
    return undo_interaction(_recs(request), user_id, interaction_id)


@router.get("/users", dependencies=[Depends(require("admin"))])
def list_users(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """Known users with the most interactions first (the demo's profile switcher)."""
    return {"users": most_active_users(_recs(request).db, limit)}


@router.get("/me")
def whoami(request: Request, principal: Annotated[Principal, Depends(require("read"))]) -> dict[str, Any]:
    """Who this caller is: whether auth is on, the key id, its scopes and the user it is bound to."""
    return {
        "auth": not request.app.state.settings.auth_disabled,
        "key_id": principal.key_id,
        "scopes": sorted(principal.scopes),
        "user_id": principal.user_id,
    }
