"""ReasoningBank: versioned strategies with outcome statistics, retrieved by meaning, success and context."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert, select, update

from ..errors import Conflict, InvalidInput, NotFound
from ..store.generations import Generation, bump_generation, read_generation
from .audit import AuditEntry, AuditLog
from .base import (
    CONTEXT_TAGS,
    CachedEncoder,
    Clock,
    Embedder,
    context_tags,
    cosine_scores,
    vector_from_bytes,
    vector_to_bytes,
    wall_clock,
)
from .rules import RULES
from .schema import create_memory_tables, strategies

# Beta(1, 1) prior: an unused strategy counts as a coin flip, and one lucky outcome cannot make it certain.
PRIOR_SUCCESSES = 1.0
PRIOR_FAILURES = 1.0


@dataclass(frozen=True)
class StrategySpec:
    """What a caller supplies to create a strategy; statistics and versioning are the bank's job."""

    title: str
    description: str
    task_type: str
    tags: list[str] = field(default_factory=list)
    heuristics: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    rule: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    family_id: str | None = None


@dataclass(frozen=True)
class Strategy:
    """One version of a strategy as stored, with its outcome statistics."""

    id: str
    family_id: str
    version: int
    parent_id: str | None
    title: str
    description: str
    task_type: str
    tags: list[str]
    heuristics: list[str]
    checks: list[str]
    constraints: list[str]
    rule: str | None
    params: dict[str, Any]
    uses: int
    successes: int
    reward_sum: float
    last_used_at: float | None
    status: str
    replaced_by: str | None
    created_at: float
    updated_at: float

    @property
    def smoothed_success(self) -> float:
        """Posterior mean success rate under a Beta(1, 1) prior: (successes + 1) / (uses + 2)."""
        return (self.successes + PRIOR_SUCCESSES) / (self.uses + PRIOR_SUCCESSES + PRIOR_FAILURES)

    @property
    def mean_reward(self) -> float:
        """Average reward over recorded outcomes (0 when never used)."""
        return self.reward_sum / self.uses if self.uses else 0.0

    def embedding_text(self) -> str:
        """The text the strategy is embedded from: what it is for and how it works."""
        return " ".join([self.title + ".", self.description, *self.heuristics])

    def to_spec(self) -> StrategySpec:
        return StrategySpec(
            title=self.title,
            description=self.description,
            task_type=self.task_type,
            tags=list(self.tags),
            heuristics=list(self.heuristics),
            checks=list(self.checks),
            constraints=list(self.constraints),
            rule=self.rule,
            params=dict(self.params),
            family_id=self.family_id,
        )


@dataclass(frozen=True)
class RetrievalWeights:
    """How retrieval blends its three signals; all in [0, 1], so the blend (the confidence) is too."""

    similarity: float = 0.5
    success: float = 0.3
    context: float = 0.2


@dataclass(frozen=True)
class StrategyMatch:
    """A retrieved strategy with the signals that ranked it."""

    strategy: Strategy
    confidence: float
    similarity: float
    success: float
    context_match: float


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return slug[:60] or "strategy"


def _row_to_strategy(row: Any) -> Strategy:
    return Strategy(
        id=row["id"],
        family_id=row["family_id"],
        version=row["version"],
        parent_id=row["parent_id"],
        title=row["title"],
        description=row["description"],
        task_type=row["task_type"],
        tags=list(row["tags"]),
        heuristics=list(row["heuristics"]),
        checks=list(row["checks"]),
        constraints=list(row["constraints"]),
        rule=row["rule"],
        params=dict(row["params"]),
        uses=row["uses"],
        successes=row["successes"],
        reward_sum=row["reward_sum"],
        last_used_at=row["last_used_at"],
        status=row["status"],
        replaced_by=row["replaced_by"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class _StrategyIndex:
    """Active strategies as numpy arrays, so a retrieval is a handful of vector operations."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.task_types = np.zeros(0, dtype=object)
        self.executable = np.zeros(0, dtype=bool)
        self.uses = np.zeros(0, dtype=np.float64)
        self.successes = np.zeros(0, dtype=np.float64)
        self.tag_matrix = np.zeros((0, len(CONTEXT_TAGS)), dtype=np.float32)
        self.strategies: list[Strategy] = []

    def rebuild(self, items: list[tuple[Strategy, np.ndarray]]) -> None:
        self.strategies = [s for s, _ in items]
        self.ids = [s.id for s in self.strategies]
        self.row_of = {sid: i for i, sid in enumerate(self.ids)}
        self.vectors = (
            np.vstack([v for _, v in items]).astype(np.float32)
            if items
            else np.zeros((0, self.dim), np.float32)
        )
        self.task_types = np.array([s.task_type for s in self.strategies], dtype=object)
        self.executable = np.array([s.rule is not None for s in self.strategies], dtype=bool)
        self.uses = np.array([s.uses for s in self.strategies], dtype=np.float64)
        self.successes = np.array([s.successes for s in self.strategies], dtype=np.float64)
        tag_pos = {t: i for i, t in enumerate(CONTEXT_TAGS)}
        self.tag_matrix = np.zeros((len(items), len(CONTEXT_TAGS)), dtype=np.float32)
        for i, s in enumerate(self.strategies):
            for tag in s.tags:
                if tag in tag_pos:
                    self.tag_matrix[i, tag_pos[tag]] = 1.0

    def refresh(self, strategy: Strategy) -> None:
        i = self.row_of.get(strategy.id)
        if i is None:
            return
        self.strategies[i] = strategy
        self.uses[i] = strategy.uses
        self.successes[i] = strategy.successes


GENERATION = "memory.strategies"  # store generation counter of the strategies table


class ReasoningBank:
    """Stores strategies in SQL and retrieves them from an in-memory matrix.

    Retrieval confidence = w_sim * max(cosine, 0) + w_success * smoothed success + w_ctx * context match,
    where context match is 1 when one of the strategy's context tags holds, 0 when it has context tags
    and none holds, and 0.5 when it is context-free (or no context is given).
    """

    def __init__(
        self,
        engine: Engine,
        embedder: Embedder,
        *,
        clock: Clock = wall_clock,
        weights: RetrievalWeights | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.engine = engine
        self.encoder = CachedEncoder(embedder)
        self.clock = clock
        self.weights = weights or RetrievalWeights()
        self.audit = audit or AuditLog(engine, clock)
        self._lock = threading.Lock()
        create_memory_tables(engine)
        self._index = _StrategyIndex(self.encoder.dim)
        self.changes = Generation(engine, GENERATION)
        self._built_at = -1  # the strategies generation the in-memory index reflects
        self.reload()

    # -- loading -------------------------------------------------------------------------------
    def reload(self) -> None:
        """Rebuild the in-memory retrieval matrix from the active rows in SQL.

        Retrieval calls this by itself whenever the strategies generation moved on (a write by
        this or any other process), so an explicit call is only needed to force a rebuild."""
        query = select(strategies).where(strategies.c.status == "active").order_by(strategies.c.created_at)
        with self.engine.connect() as conn:
            generation = read_generation(conn, GENERATION)
            rows = conn.execute(query).mappings().all()
        items = [(_row_to_strategy(r), vector_from_bytes(r["embedding"], self.encoder.dim)) for r in rows]
        fresh = _StrategyIndex(self.encoder.dim)
        fresh.rebuild(items)
        # Swapped in one assignment so a concurrent retrieval never sees half-built arrays.
        with self._lock:
            self._index = fresh
            self._built_at = generation

    def _ensure_fresh(self) -> None:
        if self.changes.generation() != self._built_at:
            self.reload()

    def _applied(self, generation: int) -> None:
        """This process's own write (now `generation`) is in the index: current if it was before."""
        if self._built_at == generation - 1:
            self._built_at = generation

    def __len__(self) -> int:
        return len(self._index.ids)

    def get(self, strategy_id: str) -> Strategy:
        """One strategy version by id, whatever its status."""
        with self.engine.connect() as conn:
            row = conn.execute(select(strategies).where(strategies.c.id == strategy_id)).mappings().first()
        if row is None:
            raise NotFound(f"no strategy {strategy_id!r}")
        return _row_to_strategy(row)

    def list_strategies(
        self, *, status: str | None = "active", task_type: str | None = None
    ) -> list[Strategy]:
        """Strategies, oldest first; status=None lists every version."""
        query = select(strategies).order_by(strategies.c.created_at, strategies.c.id)
        if status is not None:
            query = query.where(strategies.c.status == status)
        if task_type is not None:
            query = query.where(strategies.c.task_type == task_type)
        with self.engine.connect() as conn:
            return [_row_to_strategy(r) for r in conn.execute(query).mappings()]

    def embeddings(self, strategy_ids: list[str]) -> dict[str, np.ndarray]:
        """Stored embeddings of several strategy versions, by id (unknown ids are left out)."""
        query = select(strategies.c.id, strategies.c.embedding).where(strategies.c.id.in_(strategy_ids))
        with self.engine.connect() as conn:
            return {r.id: vector_from_bytes(r.embedding, self.encoder.dim) for r in conn.execute(query)}

    def embedding(self, strategy_id: str) -> np.ndarray:
        """The stored embedding of one strategy version."""
        with self.engine.connect() as conn:
            raw = conn.execute(select(strategies.c.embedding).where(strategies.c.id == strategy_id)).scalar()
        if raw is None:
            raise NotFound(f"no strategy {strategy_id!r}")
        return vector_from_bytes(raw, self.encoder.dim)

    # -- writing -------------------------------------------------------------------------------
    def add(self, spec: StrategySpec, *, strategy_id: str | None = None) -> Strategy:
        """Store a new strategy (version 1 of a new family)."""
        return self.add_many([spec], ids=[strategy_id])[0]

    def add_many(self, specs: list[StrategySpec], *, ids: list[str | None] | None = None) -> list[Strategy]:
        """Store several new strategies with one embedding batch and one transaction."""
        ids = ids or [None] * len(specs)
        if len(ids) != len(specs):
            raise InvalidInput("ids must match specs one to one")
        now = self.clock()
        drafts = []
        for spec, sid in zip(specs, ids, strict=True):
            _validate_spec(spec)
            family = spec.family_id or _slug(spec.title)
            drafts.append(
                Strategy(
                    id=sid or f"{family}@v1",
                    family_id=family,
                    version=1,
                    parent_id=None,
                    title=spec.title,
                    description=spec.description,
                    task_type=spec.task_type,
                    tags=list(spec.tags),
                    heuristics=list(spec.heuristics),
                    checks=list(spec.checks),
                    constraints=list(spec.constraints),
                    rule=spec.rule,
                    params=dict(spec.params),
                    uses=0,
                    successes=0,
                    reward_sum=0.0,
                    last_used_at=None,
                    status="active",
                    replaced_by=None,
                    created_at=now,
                    updated_at=now,
                )  # fmt: skip
            )
        self._insert(drafts, action="created", details=[{"title": d.title} for d in drafts])
        return drafts

    def _insert(
        self,
        drafts: list[Strategy],
        *,
        action: str,
        details: list[dict[str, Any]],
        supersede: Strategy | None = None,
    ) -> None:
        vectors = self.encoder.encode_many([d.embedding_text() for d in drafts])
        with self.engine.begin() as conn:
            if supersede is not None:
                # The old version is retired in the same transaction that creates its successor.
                successor = drafts[0]
                conn.execute(
                    update(strategies)
                    .where(strategies.c.id == supersede.id)
                    .values(status="superseded", replaced_by=successor.id, updated_at=successor.created_at)
                )
                self.audit.record(
                    conn,
                    "strategy",
                    supersede.id,
                    "superseded",
                    {"by": successor.id, "reason": details[0]["reason"]},
                )
            for strategy, vector, detail in zip(drafts, vectors, details, strict=True):
                if conn.execute(select(strategies.c.id).where(strategies.c.id == strategy.id)).first():
                    raise Conflict(f"strategy {strategy.id!r} already exists")
                values = dict(strategy.__dict__, embedding=vector_to_bytes(vector, self.encoder.dim))
                conn.execute(insert(strategies).values(**values))
                self.audit.record(conn, "strategy", strategy.id, action, detail)
            bump_generation(conn, GENERATION)
        self.reload()

    def record_outcome(self, strategy_id: str, *, success: bool, reward: float) -> Strategy:
        """Count one use of a strategy with its outcome; returns the updated statistics."""
        if not np.isfinite(reward):
            raise InvalidInput("reward must be a finite number")
        now = self.clock()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(strategies)
                .where(strategies.c.id == strategy_id)
                .values(
                    uses=strategies.c.uses + 1,
                    successes=strategies.c.successes + (1 if success else 0),
                    reward_sum=strategies.c.reward_sum + float(reward),
                    last_used_at=now,
                    updated_at=now,
                )
            )
            if result.rowcount == 0:
                raise NotFound(f"no strategy {strategy_id!r}")
            self.audit.record(
                conn, "strategy", strategy_id, "outcome", {"success": bool(success), "reward": reward}
            )
            generation = bump_generation(conn, GENERATION)
        updated = self.get(strategy_id)
        with self._lock:
            self._index.refresh(updated)
            self._applied(generation)
        return updated

    def evolve(
        self, strategy_id: str, *, changes: dict[str, Any], evidence: dict[str, Any], reason: str
    ) -> Strategy:
        """Create the next version of a strategy from evidence; the old version is kept, superseded.

        `changes` may set any StrategySpec field except family_id; `params` is merged into the old params.
        """
        old = self.get(strategy_id)
        if old.status != "active":
            raise Conflict(
                f"strategy {strategy_id!r} is {old.status}; evolve its current version {old.replaced_by!r}"
            )
        unknown = set(changes) - (set(StrategySpec.__dataclass_fields__) - {"family_id"})
        if unknown:
            raise InvalidInput(f"cannot change {sorted(unknown)} of a strategy")
        spec = old.to_spec()
        if "params" in changes:
            changes = {**changes, "params": {**spec.params, **changes["params"]}}
        spec = replace(spec, **changes)
        _validate_spec(spec)
        now = self.clock()
        new = replace(
            old, id=f"{old.family_id}@v{old.version + 1}", version=old.version + 1, parent_id=old.id,
            title=spec.title, description=spec.description, task_type=spec.task_type, tags=list(spec.tags),
            heuristics=list(spec.heuristics), checks=list(spec.checks), constraints=list(spec.constraints),
            rule=spec.rule, params=dict(spec.params), uses=0, successes=0, reward_sum=0.0,
            last_used_at=None, status="active", replaced_by=None, created_at=now, updated_at=now,
        )  # fmt: skip
        detail = {"parent": old.id, "reason": reason, "evidence": evidence, "changes": _jsonable(changes)}
        self._insert([new], action="evolved", details=[detail], supersede=old)
        return new

    def retire(
        self, strategy_id: str, *, status: str, replaced_by: str | None, reason: str, reload: bool = True
    ) -> None:
        """Take a version out of retrieval (merged, superseded or retired), keeping its row and history.

        reload=False leaves the rebuild to the next retrieval (or reload()), for batches of retirements.
        """
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                update(strategies)
                .where(strategies.c.id == strategy_id)
                .values(status=status, replaced_by=replaced_by, updated_at=now)
            )
            self.audit.record(conn, "strategy", strategy_id, status, {"by": replaced_by, "reason": reason})
            bump_generation(conn, GENERATION)
        if reload:
            self.reload()

    def absorb_statistics(self, survivor_id: str, other: Strategy) -> Strategy:
        """Add another strategy's outcome counts to a survivor (used when merging duplicates)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(strategies)
                .where(strategies.c.id == survivor_id)
                .values(
                    uses=strategies.c.uses + other.uses,
                    successes=strategies.c.successes + other.successes,
                    reward_sum=strategies.c.reward_sum + other.reward_sum,
                    updated_at=self.clock(),
                )
            )
            self.audit.record(
                conn, "strategy", survivor_id, "absorbed",
                {"from": other.id, "uses": other.uses, "successes": other.successes},
            )  # fmt: skip
            generation = bump_generation(conn, GENERATION)
        updated = self.get(survivor_id)
        with self._lock:
            self._index.refresh(updated)
            self._applied(generation)
        return updated

    # -- reading -------------------------------------------------------------------------------
    def retrieve(
        self,
        query: str,
        *,
        task_type: str | None = None,
        context: dict[str, Any] | None = None,
        k: int = 5,
        min_confidence: float = 0.0,
        executable_only: bool = False,
    ) -> list[StrategyMatch]:
        """The k best active strategies for a query, best first, each with confidence >= min_confidence."""
        return self.retrieve_by_vector(
            self.encoder.encode_one(query), task_type=task_type, context=context, k=k,
            min_confidence=min_confidence, executable_only=executable_only,
        )  # fmt: skip

    def retrieve_by_vector(
        self,
        query_vector: np.ndarray,
        *,
        task_type: str | None = None,
        context: dict[str, Any] | None = None,
        k: int = 5,
        min_confidence: float = 0.0,
        executable_only: bool = False,
    ) -> list[StrategyMatch]:
        """Like retrieve(), from an already-embedded query."""
        self._ensure_fresh()
        if k < 1:
            raise InvalidInput("k must be at least 1")
        idx = self._index
        if not idx.ids:
            return []
        similarity = np.clip(cosine_scores(idx.vectors, query_vector), 0.0, 1.0)
        success = (idx.successes + PRIOR_SUCCESSES) / (idx.uses + PRIOR_SUCCESSES + PRIOR_FAILURES)
        context_match = np.full(len(idx.ids), 0.5)
        if context:
            active = context_tags(context)
            ctx_vec = np.array([1.0 if t in active else 0.0 for t in CONTEXT_TAGS], dtype=np.float32)
            has_tags = idx.tag_matrix.sum(axis=1) > 0
            hit = (idx.tag_matrix @ ctx_vec) > 0
            context_match = np.where(has_tags, hit.astype(np.float64), 0.5)
        w = self.weights
        confidence = w.similarity * similarity + w.success * success + w.context * context_match
        keep = confidence >= min_confidence
        if task_type is not None:
            keep &= idx.task_types == task_type
        if executable_only:
            keep &= idx.executable
        rows = np.flatnonzero(keep)
        if rows.size > k:
            rows = rows[np.argpartition(-confidence[rows], k - 1)[:k]]
        rows = rows[np.argsort(-confidence[rows], kind="stable")]
        return [
            StrategyMatch(
                strategy=idx.strategies[i],
                confidence=float(confidence[i]),
                similarity=float(similarity[i]),
                success=float(success[i]),
                context_match=float(context_match[i]),
            )
            for i in rows
        ]

    def lineage(self, strategy_id: str) -> list[Strategy]:
        """The chain of versions that led to a strategy, first version first."""
        chain = [self.get(strategy_id)]
        while chain[0].parent_id is not None:
            chain.insert(0, self.get(chain[0].parent_id))
        return chain

    def history(self, strategy_id: str) -> list[AuditEntry]:
        """Audit trail of one strategy version."""
        self.get(strategy_id)
        return self.audit.history(strategy_id)


def _validate_spec(spec: StrategySpec) -> None:
    if not spec.title.strip():
        raise InvalidInput("a strategy needs a title")
    if not spec.task_type.strip():
        raise InvalidInput("a strategy needs a task_type")
    for name in ("tags", "heuristics", "checks", "constraints"):
        value = getattr(spec, name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"strategy {name} must be a list of strings")
    if not isinstance(spec.params, dict):
        raise InvalidInput("strategy params must be a dict")
    if spec.rule is not None:
        if spec.rule not in RULES:
            raise InvalidInput(f"unknown rule {spec.rule!r}; known: {sorted(RULES)}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)
