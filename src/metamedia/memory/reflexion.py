"""Reflexion memory: recommendation episodes with outcomes, critiques and similarity retrieval."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert, select, update

from ..errors import InvalidInput, NotFound
from ..store.generations import Generation, bump_generation, read_generation
from .audit import AuditEntry, AuditLog
from .base import (
    CachedEncoder,
    Clock,
    Embedder,
    GrowingMatrix,
    context_text,
    cosine_scores,
    daypart,
    new_id,
    vector_from_bytes,
    vector_to_bytes,
    wall_clock,
)
from .schema import create_memory_tables, episodes

NEGATIVE_COMPLETION = 0.2
SUCCESS_COMPLETION = 0.5
# Only factors that claimed a good fit (value >= this) can be blamed for an over-prediction.
CLAIM_THRESHOLD = 0.5
BLAME_THRESHOLD = 0.1
# Which strategy family answers for which scoring factor.
FACTOR_STRATEGY: dict[str, str] = {
    "genre_match": "genre_preference",
    "platform_availability": "platform_availability",
    "runtime_fit": "session_fit",
    "rating_alignment": "rating_alignment",
    "diversity": "diversity",
}


@dataclass
class EpisodeDraft:
    """What happened in one recommendation: what was shown, what the user did with the item picked."""

    task: str
    predicted_engagement: float
    actual_engagement: float
    action: str = "play"  # play | skip | complete | abandon ...
    user_id: str = ""
    session_id: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    recommended: list[str] = field(default_factory=list)
    item_id: str | None = None
    item: dict[str, Any] = field(default_factory=dict)  # title, genres, runtime, vote_average ...
    factors: dict[str, float] = field(default_factory=dict)  # scoring factors of the item, 0..1
    strategy_ids: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    reward: float | None = None  # default: the completion, 0 for a skip


@dataclass(frozen=True)
class Episode:
    """A stored episode, with its derived outcome and critique."""

    id: str
    task: str
    user_id: str
    session_id: str
    context: dict[str, Any]
    recommended: list[str]
    item_id: str | None
    item: dict[str, Any]
    factors: dict[str, float]
    strategy_ids: list[str]
    action: str
    predicted_engagement: float
    actual_engagement: float
    reward: float
    success: bool
    critique: str
    failure_keys: list[str]
    latency_ms: float
    weight: int
    status: str
    merged_into: str | None
    created_at: float

    @property
    def negative(self) -> bool:
        return is_negative(self.action, self.actual_engagement)


@dataclass(frozen=True)
class FailureAnalysis:
    """Which scoring factors over-predicted a failed recommendation, and what to learn from it."""

    over_predicted: dict[str, float]  # factor -> share of the prediction gap it carries
    failure_keys: list[str]
    critique: str


@dataclass(frozen=True)
class EpisodeMatch:
    episode: Episode
    similarity: float


@dataclass(frozen=True)
class FailurePattern:
    """A failure key seen again and again (e.g. genre_match:Horror for one user)."""

    key: str
    factor: str
    qualifier: str
    count: int
    episode_ids: list[str]


def is_negative(action: str, completion: float) -> bool:
    """A skip, or a play that stopped before 20% completion."""
    return action == "skip" or completion < NEGATIVE_COMPLETION


def analyse_failure(
    factors: Mapping[str, float],
    predicted: float,
    actual: float,
    item: Mapping[str, Any],
    context: Mapping[str, Any],
    action: str,
) -> FailureAnalysis:
    """Blame the factors that claimed a good fit for the gap between predicted and actual engagement.

    Each claiming factor (value >= 0.5) carries gap * value / sum(claiming values); factors carrying
    at least 0.1 are over-predicted. Without a factor breakdown the item's genres are blamed.
    """
    gap = max(predicted - actual, 0.0)
    genres = [str(g) for g in item.get("genres") or []]
    claiming = {f: float(v) for f, v in factors.items() if float(v) >= CLAIM_THRESHOLD}
    total = sum(claiming.values())
    blame = {f: gap * v / total for f, v in claiming.items()} if total > 0 else {}
    over = {f: round(b, 4) for f, b in sorted(blame.items(), key=lambda kv: -kv[1]) if b >= BLAME_THRESHOLD}
    if not factors and genres:
        over = {"genre_match": round(gap, 4)}
    keys: list[str] = []
    for factor in over:
        if factor == "genre_match":
            keys.extend(f"genre_match:{g}" for g in genres)
        elif factor == "runtime_fit" and context.get("hour") is not None:
            keys.append(f"runtime_fit:{daypart(int(context['hour']))}")
        else:
            keys.append(factor)
    title = item.get("title") or "the item"
    what = "skipped it" if action == "skip" else f"stopped at {actual:.0%}"
    parts = [f"Predicted {predicted:.2f} engagement for {title!r} but the user {what}."]
    if over:
        named = [
            f"{f}{' (' + ', '.join(genres) + ')' if f == 'genre_match' and genres else ''} by {b:.2f}"
            for f, b in over.items()
        ]
        parts.append("Over-predicted: " + "; ".join(named) + ".")
        parts.append("Lesson: " + _lesson(next(iter(over)), genres, context))
    else:
        parts.append("No single factor carried the miss.")
    return FailureAnalysis(over, keys, " ".join(parts))


def _lesson(factor: str, genres: list[str], context: Mapping[str, Any]) -> str:
    if factor == "genre_match":
        return f"{'/'.join(genres) or 'these'} picks are not landing for this user; weigh genre evidence more carefully."
    if factor == "runtime_fit":
        part = daypart(int(context["hour"])) if context.get("hour") is not None else "this"
        return f"the runtime did not suit the {part.replace('_', ' ')} session."
    if factor == "rating_alignment":
        return "a high rating did not predict interest for this user."
    if factor == "diversity":
        return "the variety pick did not land; explore less aggressively."
    return f"{factor} over-promised for this user."


def _row_to_episode(row: Any) -> Episode:
    return Episode(**{k: row[k] for k in Episode.__dataclass_fields__})


_ALIVE, _SUCCESS, _REWARD, _CREATED, _USER, _TASK = range(6)


class _EpisodeIndex:
    """Episode embeddings plus the filterable fields as numpy columns, so filtering is vectorised."""

    def __init__(self, dim: int, capacity: int) -> None:
        self.vectors = GrowingMatrix(dim, max(256, capacity))
        self.meta = GrowingMatrix(6, max(256, capacity), dtype=np.float64)
        self.episodes: list[Episode] = []
        self.row_of: dict[str, int] = {}
        self.user_codes: dict[str, int] = {}
        self.task_codes: dict[str, int] = {}

    def append(self, eps: list[Episode], vectors: np.ndarray) -> None:
        meta = np.array(
            [
                [
                    1.0,
                    float(ep.success),
                    ep.reward,
                    ep.created_at,
                    self.user_codes.setdefault(ep.user_id, len(self.user_codes)),
                    self.task_codes.setdefault(ep.task, len(self.task_codes)),
                ]
                for ep in eps
            ]  # fmt: skip
        )
        for ep in eps:
            self.row_of[ep.id] = len(self.episodes)
            self.episodes.append(ep)
        self.meta.append(meta)
        self.vectors.append(vectors)

    def forget(self, episode_id: str) -> None:
        row = self.row_of.get(episode_id)
        if row is not None:
            self.meta.view[row, _ALIVE] = 0.0

    def alive_count(self) -> int:
        return int(self.meta.view[:, _ALIVE].sum())


GENERATION = "memory.episodes"  # store generation counter of the episodes table


class ReflexionMemory:
    """Stores episodes in SQL and retrieves similar ones from an in-memory matrix, with filters."""

    def __init__(
        self, engine: Engine, embedder: Embedder, *, clock: Clock = wall_clock, audit: AuditLog | None = None
    ) -> None:
        self.engine = engine
        self.encoder = CachedEncoder(embedder)
        self.clock = clock
        self.audit = audit or AuditLog(engine, clock)
        self._lock = threading.Lock()
        create_memory_tables(engine)
        self.changes = Generation(engine, GENERATION)
        self._built_at = -1  # the episodes generation the in-memory index reflects
        self.reload()

    def reload(self) -> None:
        """Rebuild the in-memory index from the active episodes in SQL.

        Retrieval calls this by itself whenever the episodes generation moved on (a write by this
        or any other process), so an explicit call is only needed to force a rebuild."""
        query = select(episodes).where(episodes.c.status == "active").order_by(episodes.c.created_at)
        with self.engine.connect() as conn:
            generation = read_generation(conn, GENERATION)
            rows = conn.execute(query).mappings().all()
        fresh = _EpisodeIndex(self.encoder.dim, len(rows))
        if rows:
            vectors = np.vstack([vector_from_bytes(r["embedding"], self.encoder.dim) for r in rows])
            fresh.append([_row_to_episode(r) for r in rows], vectors)
        with self._lock:
            self._index = fresh
            self._built_at = generation

    def _applied(self, generation: int) -> bool:
        """Whether this process's own write (now `generation`) should be applied to the index:
        only when the index was current before it (else a reload has it, or will)."""
        if self._built_at != generation - 1:
            return False
        self._built_at = generation
        return True

    def __len__(self) -> int:
        return self._index.alive_count()

    @staticmethod
    def embedding_text(ep: Episode | EpisodeDraft) -> str:
        item = ep.item or {}
        genres = ", ".join(item.get("genres") or [])
        outcome = "skipped" if ep.action == "skip" else f"{ep.action} {ep.actual_engagement:.0%}"
        return f"{context_text(ep.task, ep.context)}. Picked {item.get('title', ep.item_id)} ({genres}): {outcome}."

    def store(self, draft: EpisodeDraft) -> Episode:
        """Store one episode; negative outcomes get a failure analysis and critique."""
        return self.store_many([draft])[0]

    def store_many(self, drafts: list[EpisodeDraft]) -> list[Episode]:
        """Store several episodes with one embedding batch and one transaction."""
        built = [self._build(d) for d in drafts]
        vectors = self.encoder.encode_many([self.embedding_text(ep) for ep in built])
        with self.engine.begin() as conn:
            for ep, vec in zip(built, vectors, strict=True):
                conn.execute(
                    insert(episodes).values(**asdict(ep), embedding=vector_to_bytes(vec, self.encoder.dim))
                )
                self.audit.record(
                    conn, "episode", ep.id, "created", {"success": ep.success, "critique": ep.critique}
                )
            generation = bump_generation(conn, GENERATION)
        with self._lock:
            if self._applied(generation):
                self._index.append(built, vectors)
        return built

    def _build(self, d: EpisodeDraft) -> Episode:
        for name in ("predicted_engagement", "actual_engagement"):
            value = getattr(d, name)
            if not 0.0 <= float(value) <= 1.0:
                raise InvalidInput(f"{name} must be within 0..1, got {value}")
        if not d.task.strip():
            raise InvalidInput("an episode needs a task")
        negative = is_negative(d.action, d.actual_engagement)
        success = not negative and d.actual_engagement >= SUCCESS_COMPLETION
        reward = (
            d.reward if d.reward is not None else (0.0 if d.action == "skip" else float(d.actual_engagement))
        )
        critique, keys = "", []
        if negative:
            analysis = analyse_failure(
                d.factors, d.predicted_engagement, d.actual_engagement, d.item, d.context, d.action
            )
            critique, keys = analysis.critique, analysis.failure_keys
        return Episode(
            id=new_id(), task=d.task, user_id=d.user_id, session_id=d.session_id, context=dict(d.context),
            recommended=[str(r) for r in d.recommended], item_id=None if d.item_id is None else str(d.item_id),
            item=dict(d.item), factors={k: float(v) for k, v in d.factors.items()}, strategy_ids=list(d.strategy_ids),
            action=d.action, predicted_engagement=float(d.predicted_engagement),
            actual_engagement=float(d.actual_engagement), reward=float(reward), success=success,
            critique=critique, failure_keys=keys, latency_ms=float(d.latency_ms), weight=1, status="active",
            merged_into=None, created_at=self.clock(),
        )  # fmt: skip

    def get(self, episode_id: str) -> Episode:
        with self.engine.connect() as conn:
            row = conn.execute(select(episodes).where(episodes.c.id == episode_id)).mappings().first()
        if row is None:
            raise NotFound(f"no episode {episode_id!r}")
        return _row_to_episode(row)

    def embeddings(self, episode_ids: list[str]) -> dict[str, np.ndarray]:
        """Stored embeddings of several episodes, by id (unknown ids are left out)."""
        out: dict[str, np.ndarray] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(episode_ids), 500):
                chunk = episode_ids[start : start + 500]
                query = select(episodes.c.id, episodes.c.embedding).where(episodes.c.id.in_(chunk))
                out.update(
                    {r.id: vector_from_bytes(r.embedding, self.encoder.dim) for r in conn.execute(query)}
                )
        return out

    def embedding(self, episode_id: str) -> np.ndarray:
        """The stored embedding of one episode."""
        with self.engine.connect() as conn:
            raw = conn.execute(select(episodes.c.embedding).where(episodes.c.id == episode_id)).scalar()
        if raw is None:
            raise NotFound(f"no episode {episode_id!r}")
        return vector_from_bytes(raw, self.encoder.dim)

    def episodes(
        self, *, user_id: str | None = None, since: float | None = None, active_only: bool = True
    ) -> list[Episode]:
        """Stored episodes, oldest first."""
        query = select(episodes).order_by(episodes.c.created_at)
        if active_only:
            query = query.where(episodes.c.status == "active")
        if user_id is not None:
            query = query.where(episodes.c.user_id == user_id)
        if since is not None:
            query = query.where(episodes.c.created_at >= since)
        with self.engine.connect() as conn:
            return [_row_to_episode(r) for r in conn.execute(query).mappings()]

    def retrieve(
        self,
        query: str,
        *,
        k: int = 5,
        outcome: str | None = None,
        min_reward: float | None = None,
        since: float | None = None,
        until: float | None = None,
        user_id: str | None = None,
        task: str | None = None,
    ) -> list[EpisodeMatch]:
        """The k most similar active episodes; outcome = "success" | "failure" | None (both)."""
        return self.retrieve_by_vector(
            self.encoder.encode_one(query), k=k, outcome=outcome, min_reward=min_reward,
            since=since, until=until, user_id=user_id, task=task,
        )  # fmt: skip

    def retrieve_by_vector(
        self,
        query_vector: np.ndarray,
        *,
        k: int = 5,
        outcome: str | None = None,
        min_reward: float | None = None,
        since: float | None = None,
        until: float | None = None,
        user_id: str | None = None,
        task: str | None = None,
    ) -> list[EpisodeMatch]:
        """Like retrieve(), from an already-embedded query."""
        if self.changes.generation() != self._built_at:
            self.reload()
        if outcome not in (None, "success", "failure"):
            raise InvalidInput(f"outcome must be 'success', 'failure' or None, got {outcome!r}")
        if k < 1:
            raise InvalidInput("k must be at least 1")
        with self._lock:
            idx = self._index
            size = idx.vectors.size
            vectors, meta = idx.vectors.view, idx.meta.view
            eps = idx.episodes[:size]
        keep = meta[:, _ALIVE] > 0
        if outcome is not None:
            keep &= (meta[:, _SUCCESS] > 0) == (outcome == "success")
        if min_reward is not None:
            keep &= meta[:, _REWARD] >= min_reward
        if since is not None:
            keep &= meta[:, _CREATED] >= since
        if until is not None:
            keep &= meta[:, _CREATED] <= until
        if user_id is not None:
            keep &= meta[:, _USER] == idx.user_codes.get(user_id, -1)
        if task is not None:
            keep &= meta[:, _TASK] == idx.task_codes.get(task, -1)
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            return []
        sims = cosine_scores(vectors, query_vector)
        picked = sims[rows]
        top = rows[np.argsort(-picked, kind="stable")[:k]]
        return [EpisodeMatch(eps[i], float(sims[i])) for i in top]

    def failure_patterns(
        self,
        *,
        user_id: str | None = None,
        since: float | None = None,
        strategy_id: str | None = None,
        min_count: int = 3,
    ) -> list[FailurePattern]:
        """Failure keys that repeat at least min_count times among active failed episodes, most frequent first."""
        query = select(
            episodes.c.id, episodes.c.failure_keys, episodes.c.strategy_ids, episodes.c.weight
        ).where((episodes.c.status == "active") & (episodes.c.success.is_(False)))
        if user_id is not None:
            query = query.where(episodes.c.user_id == user_id)
        if since is not None:
            query = query.where(episodes.c.created_at >= since)
        counts: Counter[str] = Counter()
        ids: dict[str, list[str]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                if strategy_id is not None and strategy_id not in (row.strategy_ids or []):
                    continue
                for key in row.failure_keys or []:
                    counts[key] += int(row.weight)
                    ids.setdefault(key, []).append(row.id)
        patterns = []
        for key, count in counts.most_common():
            if count < min_count:
                break
            factor, _, qualifier = key.partition(":")
            patterns.append(FailurePattern(key, factor, qualifier, count, ids[key]))
        return patterns

    def mark_merged(self, duplicate_id: str, survivor_id: str) -> None:
        """Fold a duplicate episode into a survivor: the survivor's weight grows, the duplicate is kept but hidden."""
        dup = self.get(duplicate_id)
        with self.engine.begin() as conn:
            conn.execute(
                update(episodes)
                .where(episodes.c.id == survivor_id)
                .values(weight=episodes.c.weight + dup.weight)
            )
            conn.execute(
                update(episodes)
                .where(episodes.c.id == duplicate_id)
                .values(status="merged", merged_into=survivor_id)
            )
            self.audit.record(conn, "episode", survivor_id, "absorbed", {"from": duplicate_id})
            self.audit.record(conn, "episode", duplicate_id, "merged", {"into": survivor_id})
            generation = bump_generation(conn, GENERATION)
        with self._lock:
            if self._applied(generation):
                self._index.forget(duplicate_id)

    def history(self, episode_id: str) -> list[AuditEntry]:
        """Audit trail of one episode."""
        return self.audit.history(episode_id)
