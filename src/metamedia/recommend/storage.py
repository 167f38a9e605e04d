"""Users, interactions and preference vectors in the store of record (portable SQLAlchemy Core).

The interactions table is the full history: a preference vector can always be rebuilt by
replaying it. ``(user_id, idempotency_key)`` is unique, so a retried event is stored once
(NULL keys never collide on SQLite or PostgreSQL).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    func,
    select,
)

from ..domain.context import FIELD_RANGES, WEEKDAY_ALIASES, weekday_of
from ..errors import InvalidInput
from ..ingest.common import open_text
from ..store.migrations import upgrade_schema
from .preference import PreferenceVector
from .signals import rating_strength

CONTEXT_FIELDS = {**FIELD_RANGES, **{alias: FIELD_RANGES["weekday"] for alias in WEEKDAY_ALIASES}}

metadata = MetaData()

USER_ID_MAX = 128
KEY_MAX = 200

users = Table(
    "rec_users",
    metadata,
    Column("id", String(USER_ID_MAX), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
)

interactions = Table(
    "rec_interactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(USER_ID_MAX), ForeignKey("rec_users.id"), nullable=False),
    Column("item_id", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", Float),
    Column("scale", String(8)),
    Column("completion", Float),
    Column("watch_seconds", Float),
    Column("strength", Float, nullable=False),
    Column("context", JSON),
    Column("idempotency_key", String(KEY_MAX)),
    Column("decision_id", String(64)),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("user_id", "idempotency_key", name="uq_rec_interactions_key"),
    Index("ix_rec_interactions_user_time", "user_id", "created_at"),
    Index("ix_rec_interactions_item", "item_id"),
)

preferences = Table(
    "rec_preferences",
    metadata,
    Column("user_id", String(USER_ID_MAX), ForeignKey("rec_users.id"), primary_key=True),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("evidence", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("genre_affinity", JSON, nullable=False),
    Column("genre_evidence", JSON, nullable=False),
    Column("genre_watches", JSON, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)


def create_tables(engine: Engine) -> None:
    """Bring the schema, these three tables included, to the newest migration (idempotent)."""
    upgrade_schema(engine)


@dataclass
class StoredProfile:
    """A preference vector as persisted, plus the per-kind interaction counts."""

    profile: PreferenceVector
    counts: dict[str, int]


def profile_values(profile: PreferenceVector, counts: Mapping[str, int], now: float) -> dict[str, Any]:
    """The column values that persist ``profile`` (history lives in the interactions table)."""
    return {
        "dim": profile.dim,
        "vector": np.asarray(profile.vector, dtype="<f4").tobytes(),
        "evidence": float(profile.evidence),
        "confidence": float(profile.confidence),
        "genre_affinity": {g: float(v) for g, v in profile.genre_affinity.items()},
        "genre_evidence": {g: float(v) for g, v in profile._genre_evidence.items()},
        "genre_watches": {g: [int(a), int(b)] for g, (a, b) in profile._genre_watches.items()},
        "counts": dict(counts),
        "updated_at": now,
    }


def save_profile(
    conn: Connection, user_id: str, profile: PreferenceVector, counts: Mapping[str, int], now: float
) -> None:
    """Insert or replace the user's stored profile."""
    values = profile_values(profile, counts, now)
    done = conn.execute(preferences.update().where(preferences.c.user_id == user_id).values(**values))
    if done.rowcount == 0:
        conn.execute(preferences.insert().values(user_id=user_id, **values))


def load_profiles(conn: Connection, user_ids: Sequence[str], *, min_rate: float) -> dict[str, StoredProfile]:
    """Stored profiles of the given users (users without one are absent)."""
    out: dict[str, StoredProfile] = {}
    for start in range(0, len(user_ids), 500):
        chunk = list(user_ids[start : start + 500])
        for row in conn.execute(select(preferences).where(preferences.c.user_id.in_(chunk))):
            profile = PreferenceVector(int(row.dim), min_rate=min_rate)
            profile.vector = np.frombuffer(row.vector, dtype="<f4").astype(np.float32).copy()
            profile.evidence = float(row.evidence)
            profile.genre_affinity = dict(row.genre_affinity or {})
            profile._genre_evidence = dict(row.genre_evidence or {})
            profile._genre_watches = {g: list(v) for g, v in (row.genre_watches or {}).items()}
            out[row.user_id] = StoredProfile(profile, dict(row.counts or {}))
    return out


def ensure_users(conn: Connection, user_ids: Iterable[str], now: float) -> None:
    """Create the users that do not exist yet and touch everyone's last_seen."""
    wanted = list(dict.fromkeys(user_ids))
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        known = set(conn.execute(select(users.c.id).where(users.c.id.in_(chunk))).scalars())
        fresh = [u for u in chunk if u not in known]
        if fresh:
            conn.execute(users.insert(), [{"id": u, "created_at": now, "last_seen": now} for u in fresh])
        if known:
            conn.execute(users.update().where(users.c.id.in_(list(known))).values(last_seen=now))


def interaction_dict(row: Any) -> dict[str, Any]:
    """A stored interaction as a JSON-ready dict."""
    return {
        "id": int(row.id),
        "user_id": row.user_id,
        "item_id": int(row.item_id),
        "kind": row.kind,
        "value": row.value,
        "scale": row.scale,
        "completion": row.completion,
        "watch_seconds": row.watch_seconds,
        "strength": round(float(row.strength), 6),
        "context": row.context or {},
        "idempotency_key": row.idempotency_key,
        "decision_id": row.decision_id,
        "timestamp": float(row.created_at),
    }


def counts_by_kind(conn: Connection, user_id: str) -> dict[str, int]:
    """How many interactions of each kind the user has."""
    query = (
        select(interactions.c.kind, func.count())
        .where(interactions.c.user_id == user_id)
        .group_by(interactions.c.kind)
    )
    return {kind: int(n) for kind, n in conn.execute(query)}


# ----- validation and file reading ----------------------------------------------------------------
def check_user_id(user_id: object) -> str:
    """A user id: 1..128 printable characters."""
    if not isinstance(user_id, str) or not user_id or len(user_id) > USER_ID_MAX or not user_id.isprintable():
        raise InvalidInput(f"user id must be 1..{USER_ID_MAX} printable characters, got {user_id!r}")
    return user_id


def check_finite(name: str, number: float | None) -> float:
    """The number as float; NaN and infinities are rejected."""
    if number is None:
        return float("nan")
    if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
        raise InvalidInput(f"{name} must be a finite number, got {number!r}")
    return float(number)


def check_key(key: str | None) -> str | None:
    if key is not None and (not isinstance(key, str) or not key or len(key) > KEY_MAX):
        raise InvalidInput(f"idempotency_key must be 1..{KEY_MAX} characters")
    return key


def check_context(context: dict[str, Any] | None) -> dict[str, Any]:
    """Context: hour 0..23, weekday 0..6 (Monday 0), device text, session_minutes; other scalar keys kept."""
    if context is None:
        return {}
    if not isinstance(context, dict) or len(context) > 32:
        raise InvalidInput("context must be an object with at most 32 fields")
    out: dict[str, Any] = {}
    for name, raw in context.items():
        if not isinstance(name, str) or not isinstance(raw, str | int | float | bool | None):
            raise InvalidInput(f"context field {name!r} must be a text, number or boolean")
        if name in CONTEXT_FIELDS and raw is not None:
            low, high = CONTEXT_FIELDS[name]
            number = check_finite(f"context.{name}", raw)  # type: ignore[arg-type]
            if not low <= number <= high:
                raise InvalidInput(f"context.{name} must be in {low}..{high}, got {raw}")
            raw = int(number) if name != "session_minutes" else number
        elif name == "device" and raw is not None and (not isinstance(raw, str) or len(raw) > 40):
            raise InvalidInput("context.device must be a text of at most 40 characters")
        elif isinstance(raw, str) and len(raw) > 200:
            raise InvalidInput(f"context field {name!r} is longer than 200 characters")
        out[name] = raw
    return out


def with_time(context: dict[str, Any]) -> dict[str, Any]:
    """The context with hour and weekday of now filled in when the client did not say (an older
    `day_of_week` counts as the weekday and is stored under that one name)."""
    now = dt.datetime.now()
    given = {k: v for k, v in context.items() if v is not None and k not in WEEKDAY_ALIASES}
    day = weekday_of(context)
    return {"hour": now.hour, "weekday": now.weekday() if day is None else day, **given}


def read_movielens_ratings(path: Path) -> list[tuple[int, int, float, int]]:
    """(userId, movieId, rating, timestamp) rows of a MovieLens ratings.csv."""
    if not path.is_file():
        raise InvalidInput(f"no ratings file at {path}")
    with open_text(path) as handle:  # plain or gzip
        reader = csv.DictReader(handle)
        if not {"userId", "movieId", "rating", "timestamp"} <= set(reader.fieldnames or ()):
            raise InvalidInput(f"{path} is not a MovieLens ratings.csv (userId,movieId,rating,timestamp)")
        try:
            return [
                (int(r["userId"]), int(r["movieId"]), float(r["rating"]), int(r["timestamp"])) for r in reader
            ]
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{path} line {reader.line_num}: {exc}") from exc


def read_movielens_links(path: Path) -> dict[int, int]:
    """movieId -> tmdbId from a MovieLens links.csv (rows without a tmdbId are skipped)."""
    if not path.is_file():
        raise InvalidInput(f"no links file at {path}")
    with open_text(path) as handle:  # plain or gzip
        reader = csv.DictReader(handle)
        if not {"movieId", "tmdbId"} <= set(reader.fieldnames or ()):
            raise InvalidInput(f"{path} is not a MovieLens links.csv (movieId,imdbId,tmdbId)")
        return {int(r["movieId"]): int(r["tmdbId"]) for r in reader if (r.get("tmdbId") or "").strip()}


def insert_ratings(
    db: Engine,
    ratings: Sequence[tuple[int, int, float, int]],
    item_of_movie: Mapping[int, int],
    user_prefix: str,
    progress: Callable[[str, int, int], None] | None = None,
    batch_size: int = 5000,
) -> tuple[int, int, set[str]]:
    """MovieLens (userId, movieId, rating, timestamp) rows as rating interactions, skipping known keys.

    Returns (imported, duplicates, users that got new rows).
    """
    imported = duplicates = 0
    touched: set[str] = set()
    now = time.time()
    for start in range(0, len(ratings), batch_size):
        records: list[dict[str, Any]] = []
        for user, movie, rating, stamp in ratings[start : start + batch_size]:
            if not 0.5 <= rating <= 5.0:
                raise InvalidInput(f"rating {rating} of user {user} movie {movie} is outside 0.5..5")
            records.append({
                "user_id": f"{user_prefix}{user}", "item_id": item_of_movie[movie], "kind": "rating",
                "value": rating, "scale": "five", "completion": None, "watch_seconds": None,
                "strength": rating_strength(rating, "five"), "context": {"source": "movielens"},
                "idempotency_key": f"ml:{user}:{movie}:{stamp}", "decision_id": None, "created_at": float(stamp),
            })  # fmt: skip
        with db.begin() as conn:
            batch_users = sorted({r["user_id"] for r in records})
            ensure_users(conn, batch_users, now)
            keys = [r["idempotency_key"] for r in records]
            existing = set(
                conn.execute(
                    select(interactions.c.user_id, interactions.c.idempotency_key).where(
                        interactions.c.user_id.in_(batch_users), interactions.c.idempotency_key.in_(keys)
                    )
                ).tuples()
            )
            fresh = [r for r in records if (r["user_id"], r["idempotency_key"]) not in existing]
            if fresh:
                conn.execute(interactions.insert(), fresh)
        imported += len(fresh)
        duplicates += len(records) - len(fresh)
        touched.update(r["user_id"] for r in fresh)
        if progress:
            progress("import", min(start + batch_size, len(ratings)), len(ratings))
    return imported, duplicates, touched


def user_events(db: Engine, user_id: str) -> list[tuple[int, float, float, str]]:
    """The user's (item_id, strength, timestamp, kind) in time order."""
    c = interactions.c
    query = select(c.item_id, c.strength, c.created_at, c.kind).where(c.user_id == user_id)
    with db.connect() as conn:
        rows = conn.execute(query.order_by(c.created_at, c.id))
        return [(int(i), float(s), float(t), str(kind)) for i, s, t, kind in rows]


def interaction_by_key(db: Engine, user_id: str, key: str) -> dict[str, Any] | None:
    """The user's stored interaction with this idempotency key, if any."""
    c = interactions.c
    with db.connect() as conn:
        row = conn.execute(select(interactions).where(c.user_id == user_id, c.idempotency_key == key)).first()
    return interaction_dict(row) if row is not None else None


def movie_item_mapping(store: Any, movies: set[int], links_csv: Path | None) -> dict[int, int]:
    """MovieLens movieId -> catalog item id: by movielens_id, else links.csv's tmdbId."""
    mapping = dict(store.find_ids("movielens_id", sorted(movies)))
    if links_csv is not None and len(mapping) < len(movies):
        tmdb_of = read_movielens_links(Path(links_csv))
        missing = {m: tmdb_of[m] for m in movies if m not in mapping and m in tmdb_of}
        by_tmdb = store.find_ids("tmdb_id", sorted(set(missing.values())))
        mapping.update({m: by_tmdb[t] for m, t in missing.items() if t in by_tmdb})
    return mapping
