"""Preference profiles of the recommendation service: read, rebuilt by replaying the history, shown."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine as Database

from ..errors import UserNotFound
from .models import ModelCache
from .preference import PreferenceEvent, PreferenceVector
from .storage import (
    StoredProfile,
    check_user_id,
    counts_by_kind,
    interaction_dict,
    interactions,
    load_profiles,
    save_profile,
    users,
)

MIN_RATE = 0.02


class ProfileMixin:
    """The profile half of RecommendService (which provides these attributes)."""

    db: Database
    models: ModelCache
    store: Any
    _profile_lock: threading.Lock

    def profile(self, user_id: str) -> dict[str, Any]:
        """Top genres, confidence, interaction counts by kind and recent signals of a known user."""
        user = check_user_id(user_id)
        with self.db.connect() as conn:
            row = conn.execute(select(users).where(users.c.id == user)).first()
            if row is None:
                raise UserNotFound(f"no user {user!r}", {"user_id": user})
            counts = counts_by_kind(conn, user)
            recent = [
                interaction_dict(r)
                for r in conn.execute(
                    select(interactions).where(interactions.c.user_id == user)
                    .order_by(interactions.c.created_at.desc(), interactions.c.id.desc()).limit(10)
                )
            ]  # fmt: skip
        titles = self.store.get_items([r["item_id"] for r in recent])
        for r in recent:
            r["title"] = titles[r["item_id"]].title if r["item_id"] in titles else None
        profile = self._profile_for_reads(user, self.models.catalog())
        affinity = sorted((profile.genre_affinity if profile else {}).items(), key=lambda kv: (-kv[1], kv[0]))
        finish = {}
        for genre, _ in affinity if profile else []:
            rate = profile.genre_finish_rate(genre) if profile else None
            if profile is not None and rate is not None:
                finish[genre] = {
                    "finished_share": round(rate, 3),
                    "watches": profile.genre_watch_count(genre),
                }
        return {
            "user_id": user,
            "created_at": row.created_at,
            "last_seen": row.last_seen,
            "interactions": sum(counts.values()),
            "counts": counts,
            "confidence": round(profile.confidence, 4) if profile else 0.0,
            "evidence": round(profile.evidence, 4) if profile else 0.0,
            "top_genres": [{"genre": g, "affinity": round(a, 4)} for g, a in affinity if a > 0][:10],
            "avoided_genres": [{"genre": g, "affinity": round(a, 4)} for g, a in reversed(affinity) if a < 0][
                :5
            ],
            "finish_rates": finish,
            "recent": recent,
        }

    def rebuild_profile(self, user_id: str) -> dict[str, Any]:
        """Replay the user's whole history into a fresh preference vector and store it."""
        user = check_user_id(user_id)
        with self._profile_lock, self.db.begin() as conn:
            stored = self._replay(conn, user)
            save_profile(conn, user, stored.profile, stored.counts, time.time())
        return {
            "user_id": user,
            "events": len(stored.profile.history),
            "confidence": stored.profile.confidence,
        }

    def _profile_for_reads(self, user: str, catalog: Any) -> PreferenceVector | None:
        with self.db.connect() as conn:
            stored = load_profiles(conn, [user], min_rate=MIN_RATE).get(user)
        if stored is None or stored.profile.dim != catalog.vectors.shape[1]:
            return None
        return stored.profile

    def _load_profile(self, conn: Any, user: str, *, exclude_latest: bool) -> StoredProfile:
        stored = load_profiles(conn, [user], min_rate=MIN_RATE).get(user)
        dim = self.models.catalog().vectors.shape[1]
        if stored is not None and stored.profile.dim == dim:
            return stored
        return self._replay(conn, user, skip_last=exclude_latest)

    def _replay(self, conn: Any, user: str, *, skip_last: bool = False) -> StoredProfile:
        catalog = self.models.catalog()
        rows = list(
            conn.execute(
                select(interactions.c.item_id, interactions.c.kind, interactions.c.strength,
                       interactions.c.completion, interactions.c.created_at)
                .where(interactions.c.user_id == user)
                .order_by(interactions.c.created_at, interactions.c.id)
            )
        )  # fmt: skip
        if skip_last and rows:
            rows = rows[:-1]  # the caller is about to learn the newest event itself
        profile = PreferenceVector(catalog.vectors.shape[1], min_rate=MIN_RATE)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.kind] = counts.get(r.kind, 0) + 1
            column = catalog.position.get(int(r.item_id))
            if column is None:
                continue
            genres = catalog.genres[column]
            event = PreferenceEvent(
                int(r.item_id), float(r.strength), genres, r.kind, r.completion, r.created_at
            )
            profile.update(catalog.vectors[column], float(r.strength), event)
        return StoredProfile(profile, counts)
