"""Hooks for the recommender: the memory reranker (strategies + user constraints) and the causal reranker."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InvalidInput
from .base import context_text
from .rules import RULE_ORDER, Candidate, apply_rule
from .seeds import RECOMMEND_TASK
from .strategies import ReasoningBank, StrategyMatch
from .users import UserMemory

RERANK_QUERY = (
    "rank a list of recommended films for this user: relevant, varied, well rated, "
    "available to watch, fitting their time and genre tastes"
)


@dataclass
class RerankResult:
    """The reranked list, the strategies that changed it, and list-level notes (why items left it)."""

    candidates: list[Candidate]
    strategy_ids: list[str]
    notes: list[str] = field(default_factory=list)
    considered: list[StrategyMatch] = field(default_factory=list)


def merge_user_stats(remembered: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Caller-supplied stats win key by key; genre_stats and excluded_genres are merged per genre."""
    merged: dict[str, Any] = {**remembered, **given}
    for key in ("genre_stats", "excluded_genres"):
        if key in remembered or key in given:
            merged[key] = {**(remembered.get(key) or {}), **(given.get(key) or {})}
    return merged


class MemoryReranker:
    """Applies the user's remembered constraints, then the executable strategies memory trusts.

    A strategy runs when retrieval (similarity to the request, smoothed success, context match)
    gives it at least `min_confidence`; strategies that keep failing therefore stop running.
    """

    def __init__(
        self,
        bank: ReasoningBank,
        users: UserMemory,
        *,
        task_type: str = RECOMMEND_TASK,
        min_confidence: float = 0.3,
        max_strategies: int = 10,
    ) -> None:
        self.bank = bank
        self.users = users
        self.task_type = task_type
        self.min_confidence = min_confidence
        self.max_strategies = max_strategies

    def apply(
        self, user_id: str, candidates: list[Candidate], context: dict[str, Any], user_stats: dict[str, Any]
    ) -> tuple[list[Candidate], list[str]]:
        """Rerank candidates for a user in a context; returns (new list, ids of strategies that changed it)."""
        result = self.rerank(user_id, candidates, context, user_stats)
        return result.candidates, result.strategy_ids

    def rerank(
        self, user_id: str, candidates: list[Candidate], context: dict[str, Any], user_stats: dict[str, Any]
    ) -> RerankResult:
        """Like apply(), with the notes that explain removals and the strategies considered."""
        stats = merge_user_stats(self.users.user_stats(user_id), user_stats)
        current, notes = self._enforce_constraints(sorted(candidates, key=lambda c: -c.score), stats)
        matches = self.bank.retrieve(
            context_text(RERANK_QUERY, context), task_type=self.task_type, context=context,
            k=self.max_strategies, min_confidence=self.min_confidence, executable_only=True,
        )  # fmt: skip
        order = {name: i for i, name in enumerate(RULE_ORDER)}
        seen_rules: set[str] = set()
        applied: list[str] = []
        for match in sorted(matches, key=lambda m: (order.get(m.strategy.rule or "", 99), -m.confidence)):
            strategy = match.strategy
            if strategy.rule is None or strategy.rule in seen_rules:
                continue  # one version per rule: the most confident
            seen_rules.add(strategy.rule)
            outcome = apply_rule(strategy.rule, current, context, stats, strategy.params)
            for cand in outcome.candidates:
                if cand.item_id in outcome.touched and strategy.id not in cand.strategy_ids:
                    cand.strategy_ids.append(strategy.id)
            if outcome.touched or outcome.notes:
                applied.append(strategy.id)
            notes.extend(outcome.notes)
            current = outcome.candidates
        return RerankResult(current, applied, notes, matches)

    @staticmethod
    def _enforce_constraints(
        candidates: list[Candidate], stats: Mapping[str, Any]
    ) -> tuple[list[Candidate], list[str]]:
        excluded: dict[str, str] = stats.get("excluded_genres") or {}
        max_runtime = stats.get("max_runtime")
        kept: list[Candidate] = []
        dropped: dict[str, int] = {}
        for cand in candidates:
            hit = next((g for g in cand.genres if g in excluded), None)
            if hit is not None:
                dropped[hit] = dropped.get(hit, 0) + 1
                continue
            if max_runtime is not None and cand.runtime and cand.runtime > int(max_runtime):
                dropped["runtime"] = dropped.get("runtime", 0) + 1
                continue
            kept.append(replace(cand, reasons=list(cand.reasons), strategy_ids=list(cand.strategy_ids)))
        notes = [
            f"avoiding {g}: {excluded[g]} ({n} dropped)"
            if g in excluded
            else f"dropped {n} titles over {max_runtime} min"
            for g, n in dropped.items()
        ]
        return kept, notes


class CausalReranker:
    """Scores candidates by the estimated causal effect of their features on completion.

    causal score = sum over features f of weight_f * feature_value_f; the new score is
    base_weight * score + causal score, so weights learnt in completion units add to the ranking.
    """

    def __init__(self, weights: dict[str, float], *, base_weight: float = 1.0) -> None:
        for name, value in weights.items():
            if not isinstance(value, int | float) or value != value:
                raise InvalidInput(f"causal weight {name!r} must be a number")
        self.weights = {k: float(v) for k, v in weights.items()}
        self.base_weight = base_weight

    def score(self, features: Mapping[str, float]) -> float:
        """Causal score of one feature vector (unknown features count as 0)."""
        return sum(w * float(features.get(f, 0.0)) for f, w in self.weights.items())

    def score_many(self, rows: Iterable[Mapping[str, float]]) -> list[float]:
        return [self.score(r) for r in rows]

    def rerank(self, candidates: list[Candidate]) -> list[Candidate]:
        """Candidates re-sorted by base score plus causal score, each with its main causal reason."""
        out: list[Candidate] = []
        for cand in candidates:
            contributions = {f: w * float(cand.features.get(f, 0.0)) for f, w in self.weights.items()}
            lift = sum(contributions.values())
            new = replace(cand, score=self.base_weight * cand.score + lift, reasons=list(cand.reasons))
            top = max(contributions.items(), key=lambda kv: abs(kv[1]), default=None)
            if top is not None and abs(top[1]) > 1e-9:
                new.reasons.append(f"causal {'lift' if top[1] > 0 else 'drag'} {top[1]:+.2f} from {top[0]}")
            out.append(new)
        return sorted(out, key=lambda c: -c.score)
