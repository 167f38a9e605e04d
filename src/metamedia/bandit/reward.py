"""The composite reward of a decision, computed from the outcome events that follow it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

OUTCOME_KINDS = ("click", "watch", "rating", "skip")


@dataclass(frozen=True)
class RewardWeights:
    """Weight of each outcome: click, watch × completion, rating × rating/10, skip."""

    click: float = 0.2
    watch: float = 0.5
    rating: float = 0.3
    skip: float = -0.3

    @classmethod
    def from_mapping(cls, data: Mapping[str, float] | None) -> RewardWeights:
        if not data:
            return cls()
        unknown = set(data) - set(OUTCOME_KINDS)
        if unknown:
            raise InvalidInput(f"unknown reward weight(s): {', '.join(sorted(unknown))}")
        return cls(**{k: float(v) for k, v in data.items()})


@dataclass(frozen=True)
class Outcome:
    """One thing the user did after a decision.

    ``value`` is the completion in [0, 1] for ``watch``, the rating on a 0–10 scale for
    ``rating``, and ignored for ``click`` and ``skip``.
    """

    kind: str
    value: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in OUTCOME_KINDS:
            raise InvalidInput(f"unknown outcome kind {self.kind!r}; expected one of {list(OUTCOME_KINDS)}")
        if self.kind == "watch" and not 0.0 <= self.value <= 1.0:
            raise InvalidInput(f"watch completion must be in [0, 1], got {self.value}")
        if self.kind == "rating" and not 0.0 <= self.value <= 10.0:
            raise InvalidInput(f"rating must be on a 0-10 scale, got {self.value}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Outcome:
        if "kind" not in data:
            raise InvalidInput("an outcome needs a 'kind'")
        return cls(str(data["kind"]), float(data.get("value", 1.0)))


def composite_reward(outcomes: Iterable[Outcome], weights: RewardWeights | None = None) -> float:
    """Weighted sum of the outcomes, clipped to [0, 1]; no outcome at all is a reward of 0."""
    w = weights or RewardWeights()
    total = 0.0
    for outcome in outcomes:
        if outcome.kind == "click":
            total += w.click
        elif outcome.kind == "watch":
            total += w.watch * outcome.value
        elif outcome.kind == "rating":
            total += w.rating * outcome.value / 10.0
        else:
            total += w.skip
    return min(1.0, max(0.0, total))
