"""MemoryFacade: agent memory as plain, JSON-ready dicts, for the HTTP routes, the CLI and the MCP server.

Every method takes and returns plain values; the stores behind it are `engine.memory` (AgentMemory).
The nightly learner runs on its own AgentMemory instance, so `learn()` reloads the in-memory indexes of
`engine.memory` afterwards; only one learner run at a time is allowed per process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from sqlalchemy import func, select

from ..domain.limits import MEMORY_MAX_K
from ..errors import Conflict, InvalidInput, NotFound
from ..jsonsafe import check_value
from ..models import MediaItem
from .audit import AuditEntry
from .base import Embedder
from .interactions import Interaction, movielens_interactions
from .learner import POPULATION, run_learner
from .reflexion import Episode, EpisodeDraft, analyse_failure, is_negative
from .rules import Candidate
from .schema import causal_weights, episodes, learner_runs, user_constraints
from .service import DEFAULT_TASK, AgentMemory
from .strategies import Strategy, StrategySpec

# Fewer logged episodes than this give effects too noisy to replace the stored ones.
MIN_CAUSAL_ROWS = 50
MAX_K = MEMORY_MAX_K
EpisodeFilter = Literal["all", "failures", "successes"]
_OUTCOME = {"all": None, "failures": "failure", "successes": "success"}
_learn_lock = threading.Lock()


def strategy_dict(s: Strategy) -> dict[str, Any]:
    """A strategy version with its statistics, as JSON-ready values."""
    out = asdict(s)
    out["smoothed_success"] = round(s.smoothed_success, 6)
    out["mean_reward"] = round(s.mean_reward, 6)
    return out


def episode_dict(e: Episode) -> dict[str, Any]:
    """An episode as JSON-ready values."""
    return asdict(e)


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    return asdict(entry)


def parse_time(value: float | int | str | None) -> float | None:
    """Seconds since the epoch from a number or an ISO-8601 string (naive times count as UTC)."""
    if value is None or isinstance(value, int | float):
        return None if value is None else float(value)
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"not a time (epoch seconds or ISO-8601): {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


MAX_REWARD = 1000.0


def _check_number(name: str, value: float, low: float, high: float) -> float:
    """A finite number within [low, high] (booleans are not numbers), else InvalidInput."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= float(value) <= high:
        raise InvalidInput(f"{name} must be a number within {low:g}..{high:g}, got {value!r}")
    return float(value)


def _check_k(k: int) -> int:
    if not 1 <= int(k) <= MAX_K:
        raise InvalidInput(f"k must be within 1..{MAX_K}, got {k}")
    return int(k)


def episode_interactions(episodes: Iterable[Episode]) -> list[Interaction]:
    """Logged episodes with scoring factors, as interactions the causal estimator learns from."""
    return [
        Interaction(e.user_id, e.item_id or "", e.actual_engagement, e.created_at, dict(e.factors))
        for e in episodes
        if e.factors
    ]


def _learnable(rows: list[Interaction]) -> bool:
    if len(rows) < MIN_CAUSAL_ROWS:
        return False
    names = {f for r in rows for f in r.features}
    return any(len({r.features.get(f, 0.0) for r in rows}) > 1 for f in names)


class MemoryHost(Protocol):
    """What the facade uses of the engine: its agent memory, embedder, event sink and catalog."""

    @property
    def memory(self) -> AgentMemory: ...
    @property
    def embedder(self) -> Embedder: ...
    def publish(self, kind: str, data: dict[str, Any]) -> None: ...
    def get_item(self, item_id: int) -> MediaItem: ...


class MemoryFacade:
    """Thin adapter over `engine.memory`: plain arguments in, JSON-ready dicts out."""

    def __init__(self, engine: MemoryHost) -> None:
        self.engine = engine

    @property
    def memory(self) -> AgentMemory:
        return self.engine.memory

    # -- strategies ------------------------------------------------------------------------------
    def strategy_store(
        self,
        title: str,
        description: str,
        task_type: str,
        tags: list[str] | None = None,
        heuristics: list[str] | None = None,
        constraints: list[str] | None = None,
    ) -> dict[str, Any]:
        """Store a new strategy (version 1 of a family named after its title); 409 if it exists."""
        spec = StrategySpec(
            title=title, description=description, task_type=task_type, tags=list(tags or []),
            heuristics=list(heuristics or []), constraints=list(constraints or []),
        )  # fmt: skip
        return strategy_dict(self.memory.bank.add(spec))

    def strategy_search(
        self,
        query: str,
        task_type: str | None = None,
        k: int = 5,
        min_confidence: float = 0.0,
        context: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Active strategies best suited to a query, best first, with the signals that ranked them."""
        if not query.strip():
            raise InvalidInput("query must not be empty")
        if not 0.0 <= min_confidence <= 1.0:
            raise InvalidInput(f"min_confidence must be within 0..1, got {min_confidence}")
        matches = self.memory.bank.retrieve(
            query, task_type=task_type, context=context, k=_check_k(k), min_confidence=min_confidence
        )
        return [
            {
                "strategy": strategy_dict(m.strategy),
                "confidence": round(m.confidence, 6),
                "similarity": round(m.similarity, 6),
                "success": round(m.success, 6),
                "context_match": round(m.context_match, 6),
            }
            for m in matches
        ]

    def strategy_record_outcome(self, strategy_id: str, success: bool, reward: float) -> dict[str, Any]:
        """Count one use of a strategy with its outcome; returns its updated statistics."""
        reward = _check_number("reward", reward, -MAX_REWARD, MAX_REWARD)
        return strategy_dict(
            self.memory.bank.record_outcome(strategy_id, success=bool(success), reward=float(reward))
        )

    def strategy_evolve(
        self,
        strategy_id: str,
        changes: dict[str, Any],
        reason: str,
        evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create the next version of a strategy; the old version stays, superseded."""
        if not reason.strip():
            raise InvalidInput("evolving a strategy needs a reason")
        check_value(changes, "changes")
        check_value(evidence or {}, "evidence")
        new = self.memory.bank.evolve(
            strategy_id, changes=dict(changes), evidence=dict(evidence or {}), reason=reason
        )
        return strategy_dict(new)

    def strategy_history(self, strategy_id: str) -> dict[str, Any]:
        """A strategy version, the versions that led to it, and its audit trail."""
        bank = self.memory.bank
        lineage = bank.lineage(strategy_id)
        return {
            "strategy": strategy_dict(lineage[-1]),
            "lineage": [strategy_dict(s) for s in lineage],
            "audit": [audit_dict(a) for a in bank.history(strategy_id)],
        }

    # -- reflexion episodes ----------------------------------------------------------------------
    def reflexion_store(
        self,
        session_id: str,
        task: str,
        context: dict[str, Any],
        recommended: list[Any],
        predicted: float,
        actual: float,
        reward: float,
        success: bool,
        critique: str | None = None,
        *,
        user_id: str = "",
        action: str = "play",
        item_id: str | None = None,
        item: dict[str, Any] | None = None,
        factors: dict[str, float] | None = None,
        strategy_ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """Store one episode. Success follows from the engagement (>= 0.5 and not a skip), so a
        contradicting `success` is rejected; the caller's critique is kept in the episode's audit trail."""
        predicted = _check_number("predicted", predicted, 0.0, 1.0)
        actual = _check_number("actual", actual, 0.0, 1.0)
        reward = _check_number("reward", reward, -MAX_REWARD, MAX_REWARD)
        for name, value in (("context", context), ("item", item or {}), ("factors", factors or {}),
                            ("recommended", recommended)):  # fmt: skip
            check_value(value, name)
        derived = not is_negative(action, float(actual)) and float(actual) >= 0.5
        if bool(success) != derived:
            raise InvalidInput(
                f"success={success} contradicts actual engagement {actual} with action {action!r}: "
                "an episode succeeds when engagement is at least 0.5 and it was not skipped"
            )
        draft = EpisodeDraft(
            task=task, predicted_engagement=float(predicted), actual_engagement=float(actual), action=action,
            user_id=user_id, session_id=session_id, context=dict(context), recommended=[str(r) for r in recommended],
            item_id=item_id, item=dict(item or {}), factors=dict(factors or {}),
            strategy_ids=list(strategy_ids or []), reward=float(reward),
        )  # fmt: skip
        episode = self.memory.reflexion.store(draft)
        out = episode_dict(episode)
        if critique and critique.strip():
            with self.memory.engine.begin() as conn:
                self.memory.audit.record(conn, "episode", episode.id, "critique", {"critique": critique})
            out["caller_critique"] = critique
        return out

    def reflexion_search(
        self,
        query: str,
        only: EpisodeFilter = "all",
        min_reward: float | None = None,
        since: float | str | None = None,
        k: int = 5,
        *,
        until: float | str | None = None,
        user_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Episodes most similar to a query, filtered by outcome, reward and time window."""
        if only not in _OUTCOME:
            raise InvalidInput(f"only must be one of {sorted(_OUTCOME)}, got {only!r}")
        if not query.strip():
            raise InvalidInput("query must not be empty")
        matches = self.memory.reflexion.retrieve(
            query, k=_check_k(k), outcome=_OUTCOME[only], min_reward=min_reward,
            since=parse_time(since), until=parse_time(until), user_id=user_id,
        )  # fmt: skip
        return [{"episode": episode_dict(m.episode), "similarity": round(m.similarity, 6)} for m in matches]

    def reflexion_analyze(self, episode_id: str, k: int = 5) -> dict[str, Any]:
        """Why an episode went the way it did: the over-predicting factors, a critique, similar
        failures and the repeated failure patterns of the same user."""
        reflexion = self.memory.reflexion
        ep = reflexion.get(episode_id)
        analysis = analyse_failure(
            ep.factors, ep.predicted_engagement, ep.actual_engagement, ep.item, ep.context, ep.action
        )
        similar = reflexion.retrieve_by_vector(
            reflexion.embedding(ep.id), k=_check_k(k) + 1, outcome="failure", user_id=ep.user_id or None
        )
        patterns = reflexion.failure_patterns(user_id=ep.user_id or None, min_count=2)
        keys = set(analysis.failure_keys)
        return {
            "episode": episode_dict(ep),
            "failed": not ep.success,
            "prediction_gap": round(ep.predicted_engagement - ep.actual_engagement, 6),
            "over_predicted": analysis.over_predicted,
            "failure_keys": analysis.failure_keys,
            "critique": ep.critique or analysis.critique,
            "similar_failures": [
                {"episode": episode_dict(m.episode), "similarity": round(m.similarity, 6)}
                for m in similar if m.episode.id != ep.id
            ][:k],
            "patterns": [asdict(p) for p in patterns if p.key in keys],
        }  # fmt: skip

    # -- skills ----------------------------------------------------------------------------------
    def skill_search(self, task: str, k: int = 5, min_success_rate: float = 0.0) -> list[dict[str, Any]]:
        """Consolidated skills most similar to a task, with their success rates."""
        if not task.strip():
            raise InvalidInput("task must not be empty")
        matches = self.memory.skills.search(task, k=_check_k(k), min_success_rate=min_success_rate)
        return [
            {"skill": asdict(m.skill) | {"success_rate": round(m.skill.success_rate, 6)}, "similarity": round(m.similarity, 6)}
            for m in matches
        ]  # fmt: skip

    # -- causal ----------------------------------------------------------------------------------
    def _weights(self, scope: str) -> list[dict[str, Any]]:
        query = select(causal_weights).where(
            (causal_weights.c.scope == scope) & (causal_weights.c.status == "active")
        )
        with self.memory.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        out = [
            {
                k: r[k]
                for k in ("feature", "effect", "ci_low", "ci_high", "sample_size", "method", "created_at")
            }
            | {"significant": bool(r["ci_low"] > 0 or r["ci_high"] < 0)}
            for r in rows
        ]
        return sorted(out, key=lambda w: -abs(w["effect"]))

    def causal_effects(self, user_id: str | None = None, top: int = 10) -> dict[str, Any]:
        """Learnt effects of ranking features on completion, largest first; with a user, that user's
        effects shrunk toward the population (a user without enough data gets the population's)."""
        top = _check_k(top)
        population = self._weights(POPULATION)
        out: dict[str, Any] = {"population": population[:top], "user": None}
        if user_id is not None:
            pop = {w["feature"]: w["effect"] for w in population}
            own = self._weights(f"user:{user_id}")
            effects = [
                {"feature": w["feature"], "effect": w["effect"], "population_effect": pop.get(w["feature"]),
                 "deviation": None if w["feature"] not in pop else w["effect"] - pop[w["feature"]]}
                for w in own
            ] or [
                {"feature": f, "effect": e, "population_effect": e, "deviation": 0.0} for f, e in pop.items()
            ]  # fmt: skip
            out["user"] = {"user_id": user_id, "personalised": bool(own), "effects": effects[:top]}
        return out

    def causal_paths(self, outcome: str, max_depth: int = 5, k: int = 10) -> list[dict[str, Any]]:
        """The most confident causal chains ending at an outcome ("completion" or "type:label")."""
        event_type, _, label = outcome.partition(":") if ":" in outcome else ("outcome", "", outcome)
        graph = self.memory.graph
        paths = graph.paths_to(graph.find_node(event_type, label), max_depth=max_depth, k=_check_k(k))
        return [
            {
                "path": p.describe(),
                "confidence": round(p.confidence, 6),
                "nodes": [asdict(n) for n in p.nodes],
                "edges": [asdict(e) for e in p.edges],
            }
            for p in paths
        ]

    def causal_causes(self, event: str, k: int = 10) -> list[dict[str, Any]]:
        """The strongest causes (|uplift| x confidence) of any event of a type, e.g. "outcome"."""
        if not event.strip():
            raise InvalidInput("event must not be empty")
        return [
            {
                "causes": [asdict(c) for c in s.causes],
                "effect": asdict(s.effect),
                "uplift": s.edge.uplift,
                "confidence": s.edge.confidence,
                "sample_size": s.edge.sample_size,
                "strength": round(s.strength, 6),
            }
            for s in self.memory.graph.strongest_causes(event, k=_check_k(k))
        ]

    # -- the learner -----------------------------------------------------------------------------
    def learn(
        self, movielens: str | Path | None = None, max_interactions: int | None = None
    ) -> dict[str, Any]:
        """Run the nightly learner once and announce it ("learner_run" event). Causal effects are
        re-estimated from MovieLens ratings when a folder is given, else from the logged episodes
        (only once there are at least MIN_CAUSAL_ROWS with scoring factors)."""
        if not _learn_lock.acquire(blocking=False):
            raise Conflict("a learner run is already in progress")
        try:
            memory = self.memory  # seeds the strategy bank before the learner looks at it
            if movielens is not None:
                rows = movielens_interactions(Path(movielens))
            else:
                rows = episode_interactions(memory.reflexion.episodes())
            if max_interactions is not None:
                rows = rows[: max(int(max_interactions), 0)]
            source = "movielens" if movielens is not None else "episodes"
            learnable = _learnable(rows)
            report = run_learner(memory.engine, self.engine.embedder, rows if learnable else None)
            # The learner wrote through its own instances: refresh the ones requests read.
            memory.bank.reload()
            memory.reflexion.reload()
            with memory.engine.connect() as conn:
                run_id = conn.execute(select(func.max(learner_runs.c.id))).scalar()
        finally:
            _learn_lock.release()
        out = {"run_id": run_id, "causal_source": source if learnable else None, **report.to_dict()}
        self.engine.publish(
            "learner_run",
            {"run_id": run_id, "duration_s": round(report.duration_s, 3), "changes": len(report.changes),
             "evolved": [list(e) for e in report.evolved], "skills_created": report.skills_created,
             "top_features": report.top_features, "moat": asdict(report.moat)},
        )  # fmt: skip
        return out

    def learner_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Recent learner runs, newest first, with their reports."""
        query = select(learner_runs).order_by(learner_runs.c.id.desc()).limit(_check_k(limit))
        with self.memory.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {"run_id": r["id"], "started_at": r["started_at"], "finished_at": r["finished_at"], "report": dict(r["report"])}
            for r in rows
        ]  # fmt: skip

    def memory_owner(self, memory_id: str) -> str | None:
        """The user a memory belongs to (an episode's or a constraint's user), None for shared
        memories (strategies, skills) and for ids nothing is stored under."""
        with self.memory.engine.connect() as conn:
            if memory_id.startswith("constraint:"):
                number = memory_id.removeprefix("constraint:")
                if not number.isdigit() or len(number) > 18:
                    return None
                query = select(user_constraints.c.user_id).where(user_constraints.c.id == int(number))
            else:
                query = select(episodes.c.user_id).where(episodes.c.id == memory_id)
            owner = conn.execute(query).scalar()
        return str(owner) if owner else None

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """Audit trail of any memory (strategy id, episode id, skill id, "constraint:<n>"); 404 if none."""
        entries = self.memory.history(memory_id)
        if not entries:
            raise NotFound(f"no memory {memory_id!r} has any history")
        return [audit_dict(a) for a in entries]

    # -- feedback and reranking (the loop that changes recommendations) -------------------------
    def candidate(self, row: dict[str, Any]) -> Candidate:
        """A reranker candidate from a search result row (or any dict with at least `id`)."""
        if "id" not in row:
            raise InvalidInput("a candidate needs an id")
        return Candidate(
            item_id=str(row["id"]), score=float(row.get("score") or 0.0), genres=list(row.get("genres") or []),
            runtime=row.get("runtime"), vote_average=row.get("vote_average"), year=row.get("year"),
            title=str(row.get("title") or ""), features=dict(row.get("features") or {}),
        )  # fmt: skip

    def record_feedback(
        self,
        user_id: str,
        item_id: int,
        action: str,
        completion: float,
        context: dict[str, Any] | None = None,
        *,
        score: float | None = None,
        session_id: str = "",
        recommended: list[Any] | None = None,
        task: str = DEFAULT_TASK,
    ) -> dict[str, Any]:
        """Learn from what a user did with a catalog item; says which constraints this added or retracted."""
        if not user_id.strip():
            raise InvalidInput("user_id must not be empty")
        item = self.engine.get_item(int(item_id))
        row = {"id": item.id, "title": item.title, "genres": item.genres, "runtime": item.runtime,
               "vote_average": item.vote_average, "year": item.year, "score": score or 0.0}  # fmt: skip
        result = self.memory.record_feedback(
            user_id=user_id, candidate=self.candidate(row), action=action, completion=float(completion),
            context=dict(context or {}), recommended=[str(r) for r in recommended or []],
            # a result row's score is a ranking score (search scores exceed 1): clamped like the
            # service clamps a candidate's score when no prediction is given
            session_id=session_id, task=task,
            predicted_engagement=None if score is None else min(max(float(score), 0.0), 1.0),
        )  # fmt: skip
        return {
            "episode": episode_dict(result.episode),
            "constraints_added": [asdict(c) for c in result.constraints_added],
            "constraints_retracted": [asdict(c) for c in result.constraints_retracted],
        }

    def rerank(
        self, user_id: str, candidates: list[dict[str, Any]], context: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Rerank result rows for a user with remembered constraints and trusted strategies."""
        result = self.memory.reranker.rerank(
            user_id, [self.candidate(c) for c in candidates], dict(context or {}), {}
        )
        return {
            "results": [asdict(c) for c in result.candidates],
            "notes": result.notes,
            "strategy_ids": result.strategy_ids,
        }

    def user_constraints(self, user_id: str, active_only: bool = True) -> list[dict[str, Any]]:
        """What memory believes about a user (e.g. excluded genres), with the evidence."""
        return [asdict(c) for c in self.memory.users.constraints(user_id, active_only=active_only)]
