"""HTTP adapter of the recommendation layer: interactions, recommendations and profiles per user.

A key bound to a user may only reach that user's routes (``require(..., user_param="user_id")``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..domain.limits import RECOMMEND_MAX_K
from .auth import require

router = APIRouter(tags=["users"])

Kind = Literal["view", "click", "watch", "rewatch", "rating", "like", "dislike", "skip", "add_to_list"]
Algorithm = Literal["auto", "popularity", "trending", "content", "itemknn", "als", "ease", "graph", "hybrid"]


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
        )  # fmt: skip
    )


@router.get("/users/{user_id}/profile", dependencies=[Depends(require("read", user_param="user_id"))])
def get_profile(user_id: str, request: Request) -> dict[str, Any]:
    """Top genres, confidence, interaction counts by kind and recent signals (404 for unknown users)."""
    return dict(_recs(request).profile(user_id))
