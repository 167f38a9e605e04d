"""What a user tells us directly: blocked genres and a runtime limit, and undoing one interaction.

Stated preferences are stored as agent-memory user constraints (``exclude_genre``, ``max_runtime``)
with ``evidence.source = "user"``, so the memory reranker enforces them like the ones it learns;
the recommender also removes them from the candidate pool, so rows stay full. Constraints memory
learned from feedback are shown next to them and can be lifted the same way (unblocking a genre).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select

from ..errors import InvalidInput, NotFound
from ..memory.users import UserMemory
from ..search.filters import resolve_genres
from .ports import UserConstraints
from .storage import check_user_id, interaction_dict, interactions, users

USER_SOURCE = "user"
MAX_BLOCKED = 30


@dataclass(frozen=True)
class UserLimits:
    """The limits every recommendation for a user obeys: genres never shown, longest runtime."""

    blocked_genres: frozenset[str]
    max_runtime: int | None


def user_limits(users: UserConstraints, user_id: str) -> UserLimits:
    """Active exclude_genre and max_runtime constraints of a user, whoever set them."""
    blocked: set[str] = set()
    max_runtime: int | None = None
    for c in users.constraints(user_id):
        if c.kind == "exclude_genre":
            blocked.add(c.subject)
        elif c.kind == "max_runtime":
            max_runtime = int(c.value)
    return UserLimits(frozenset(blocked), max_runtime)


def blocked_mask(genres: list[tuple[str, ...]] | Any, blocked: frozenset[str]) -> np.ndarray:
    """True for catalog columns carrying any blocked genre."""
    if not blocked:
        return np.zeros(len(genres), dtype=bool)
    return np.array([bool(blocked.intersection(g)) for g in genres], dtype=bool)


def read_preferences(users: UserMemory, user_id: str) -> dict[str, Any]:
    """Blocked genres and runtime limit, each with who set it and why."""
    user = check_user_id(user_id)
    blocked, runtime = [], None
    for c in users.constraints(user):
        entry = {"source": c.evidence.get("source", "memory"), "reason": c.reason, "constraint_id": c.id}
        if c.kind == "exclude_genre":
            blocked.append({"genre": c.subject, **entry})
        elif c.kind == "max_runtime":
            runtime = {"minutes": int(c.value), **entry}
    return {"user_id": user, "blocked_genres": blocked, "max_runtime": runtime}


def write_preferences(
    users: UserMemory, user_id: str, *, blocked_genres: list[str] | None = None, max_runtime: int | None = None,
    clear_max_runtime: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Set the blocked genres (the whole list; None keeps it) and the runtime limit.

    Everything is validated before anything is written. A genre no longer listed is unblocked,
    whether the user or memory blocked it.
    """
    user = check_user_id(user_id)
    wanted = None
    if blocked_genres is not None:
        if len(blocked_genres) > MAX_BLOCKED:
            raise InvalidInput(f"at most {MAX_BLOCKED} blocked genres")
        wanted = set(resolve_genres(blocked_genres))
    if max_runtime is not None and not 1 <= max_runtime <= 1000:
        raise InvalidInput(f"max_runtime must be 1..1000 minutes, got {max_runtime}")
    active = users.constraints(user)
    evidence = {"source": USER_SOURCE}
    if wanted is not None:
        current = {c.subject: c for c in active if c.kind == "exclude_genre"}
        for genre in sorted(wanted - current.keys()):
            users.add_constraint(
                user, "exclude_genre", genre, True, reason="you blocked it", evidence=evidence
            )
        for genre in sorted(current.keys() - wanted):
            users.retract_constraint(current[genre].id, reason="you unblocked it", evidence=evidence)
    if max_runtime is not None:
        reason = f"you prefer titles up to {max_runtime} min"
        users.add_constraint(user, "max_runtime", "runtime", max_runtime, reason=reason, evidence=evidence)
    elif clear_max_runtime:
        for c in active:
            if c.kind == "max_runtime":
                users.retract_constraint(c.id, reason="you removed the runtime limit", evidence=evidence)
    return read_preferences(users, user)


def list_interactions(db: Any, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """A user's interactions, newest first."""
    user = check_user_id(user_id)
    c = interactions.c
    query = select(interactions).where(c.user_id == user).order_by(c.created_at.desc(), c.id.desc())
    with db.connect() as conn:
        return [interaction_dict(r) for r in conn.execute(query.limit(limit))]


def undo_interaction(recs: Any, user_id: str, interaction_id: int) -> dict[str, Any]:
    """Delete one of the user's interactions and replay their preference vector without it.

    A bandit reward already joined to the recommendation it answered stays in the bandit's log.
    """
    user = check_user_id(user_id)
    c = interactions.c
    with recs.db.begin() as conn:
        row = conn.execute(select(interactions).where(c.id == interaction_id, c.user_id == user)).first()
        if row is None:
            raise NotFound(f"user {user!r} has no interaction {interaction_id}", {"id": interaction_id})
        conn.execute(delete(interactions).where(c.id == interaction_id))
    undone = interaction_dict(row)
    profile = recs.rebuild_profile(user)
    recs.publish("interaction.undone", {"id": interaction_id, "user_id": user, "item_id": undone["item_id"]})
    return {"undone": undone, "profile": {"events": profile["events"], "confidence": profile["confidence"]}}


def most_active_users(db: Any, limit: int = 50) -> list[dict[str, Any]]:
    """Users with the most interactions first: id, interaction count, last seen."""
    c = interactions.c
    count = func.count(c.id).label("interactions")
    query = (
        select(users.c.id, count, users.c.last_seen)
        .select_from(users.outerjoin(interactions, c.user_id == users.c.id))
        .group_by(users.c.id, users.c.last_seen)
        .order_by(count.desc(), users.c.id)
        .limit(limit)
    )
    with db.connect() as conn:
        return [
            {"user_id": r.id, "interactions": int(r.interactions), "last_seen": r.last_seen}
            for r in conn.execute(query)
        ]
