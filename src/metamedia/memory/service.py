"""AgentMemory: the memory stores wired together, and the feedback loop that makes them learn."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from ..errors import InvalidInput
from .audit import AuditEntry, AuditLog
from .base import Clock, Embedder, wall_clock
from .graph import CausalGraph
from .reflexion import Episode, EpisodeDraft, ReflexionMemory
from .reranker import MemoryReranker
from .rules import Candidate, genre_verdicts
from .schema import create_memory_tables
from .seeds import seed_strategies
from .skills import SkillLibrary
from .strategies import ReasoningBank
from .users import UserConstraint, UserMemory

DEFAULT_TASK = "recommend films"
# A skipped-genre pattern must repeat this often before it becomes a hard constraint.
PATTERN_MIN_FAILURES = 3
# This many completions of an excluded genre contradict the exclusion.
CONTRADICTION_MIN_COMPLETIONS = 3
COMPLETED = 0.8


@dataclass
class FeedbackResult:
    """What recording one piece of feedback changed."""

    episode: Episode
    constraints_added: list[UserConstraint] = field(default_factory=list)
    constraints_retracted: list[UserConstraint] = field(default_factory=list)


class AgentMemory:
    """All memory stores on one engine and one embedder, plus record_feedback()."""

    def __init__(
        self, engine: Engine, embedder: Embedder, *, clock: Clock = wall_clock, seed: bool = True
    ) -> None:
        create_memory_tables(engine)
        self.engine = engine
        self.clock = clock
        self.audit = AuditLog(engine, clock)
        self.bank = ReasoningBank(engine, embedder, clock=clock, audit=self.audit)
        self.reflexion = ReflexionMemory(engine, embedder, clock=clock, audit=self.audit)
        self.users = UserMemory(engine, clock=clock, audit=self.audit)
        self.skills = SkillLibrary(engine, embedder, clock=clock, audit=self.audit)
        self.graph = CausalGraph(engine, clock=clock)
        self.reranker = MemoryReranker(self.bank, self.users)
        if seed:
            seed_strategies(self.bank)

    def history(self, memory_id: str) -> list[AuditEntry]:
        """Audit trail of any memory by id (strategy id, episode id, skill id, "constraint:<n>")."""
        return self.audit.history(memory_id)

    def record_feedback(
        self,
        *,
        user_id: str,
        candidate: Candidate,
        action: str,
        completion: float,
        context: dict[str, Any],
        recommended: list[str] | None = None,
        session_id: str = "",
        predicted_engagement: float | None = None,
        latency_ms: float = 0.0,
        task: str = DEFAULT_TASK,
    ) -> FeedbackResult:
        """Learn from what a user did with one recommended item.

        Stores the episode (with a critique when it went badly), credits or blames the strategies
        that placed the item, updates the user's genre counts, and turns a repeated failure pattern
        into a user constraint (or retracts a constraint that new evidence contradicts).
        """
        if not 0.0 <= completion <= 1.0:
            raise InvalidInput(f"completion must be within 0..1, got {completion}")
        predicted = (
            predicted_engagement if predicted_engagement is not None else min(max(candidate.score, 0.0), 1.0)
        )
        self.users.record_engagement(
            user_id, candidate.genres, skipped=action == "skip", completion=completion
        )
        episode = self.reflexion.store(
            EpisodeDraft(
                task=task, predicted_engagement=predicted, actual_engagement=completion, action=action,
                user_id=user_id, session_id=session_id, context=dict(context),
                recommended=list(recommended or []), item_id=candidate.item_id,
                item={"title": candidate.title, "genres": list(candidate.genres), "runtime": candidate.runtime,
                      "vote_average": candidate.vote_average, "year": candidate.year},
                factors=dict(candidate.features), strategy_ids=list(candidate.strategy_ids), latency_ms=latency_ms,
            )
        )  # fmt: skip
        for sid in candidate.strategy_ids:
            self.bank.record_outcome(sid, success=episode.success, reward=episode.reward)
        result = FeedbackResult(episode)
        if episode.negative:
            result.constraints_added = self._constrain_from_failures(user_id, episode)
        elif completion >= COMPLETED:
            result.constraints_retracted = self._retract_contradicted(user_id, candidate)
        return result

    def _genre_params(self) -> dict[str, Any]:
        for strategy in self.bank.list_strategies(task_type="recommendation"):
            if strategy.rule == "genre_preference":
                return dict(strategy.params)
        return {}

    def _constrain_from_failures(self, user_id: str, episode: Episode) -> list[UserConstraint]:
        genres = {k.partition(":")[2] for k in episode.failure_keys if k.startswith("genre_match:")}
        if not genres:
            return []
        patterns = self.reflexion.failure_patterns(user_id=user_id, min_count=PATTERN_MIN_FAILURES)
        repeated = {p.qualifier: p for p in patterns if p.factor == "genre_match" and p.qualifier in genres}
        verdicts = genre_verdicts({"genre_stats": self.users.genre_stats(user_id)}, self._genre_params())
        excluded = {c.subject for c in self.users.constraints(user_id) if c.kind == "exclude_genre"}
        added = []
        for genre, pattern in repeated.items():
            kind, why = verdicts.get(genre, ("", ""))
            if kind != "avoid" or genre in excluded:
                continue
            added.append(
                self.users.add_constraint(
                    user_id,
                    "exclude_genre",
                    genre,
                    True,
                    reason=why,
                    evidence={
                        "pattern": pattern.key,
                        "failures": pattern.count,
                        "episodes": pattern.episode_ids[-10:],
                    },
                )  # fmt: skip
            )
        return added

    def _retract_contradicted(self, user_id: str, candidate: Candidate) -> list[UserConstraint]:
        retracted = []
        for constraint in self.users.constraints(user_id):
            if constraint.kind != "exclude_genre" or constraint.subject not in candidate.genres:
                continue
            later = [
                ep for ep in self.reflexion.episodes(user_id=user_id, since=constraint.created_at)
                if constraint.subject in (ep.item.get("genres") or []) and ep.actual_engagement >= COMPLETED
            ]  # fmt: skip
            if len(later) < CONTRADICTION_MIN_COMPLETIONS:
                continue
            reason = f"you finished {len(later)} {constraint.subject.lower()} films since we stopped suggesting them"
            old_stats = self.users.genre_stats(user_id).get(constraint.subject, {})
            with self.engine.begin() as conn:
                self.users.reset_genre(
                    conn, user_id, constraint.subject, shown=len(later), completed=len(later),
                    completion_sum=sum(ep.actual_engagement for ep in later),
                )  # fmt: skip
                self.audit.record(
                    conn,
                    "constraint",
                    f"constraint:{constraint.id}",
                    "evidence_reset",
                    {"old_genre_stats": old_stats},
                )
            retracted.append(
                self.users.retract_constraint(
                    constraint.id, reason=reason, evidence={"episodes": [e.id for e in later]}
                )
            )
        return retracted
