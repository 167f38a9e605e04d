"""Safe exploration: the bandit explores only among arms whose logged value is close to the best.

An arm's logged-data estimate is the Beta posterior of the rewards its own served requests
received (fractional Bernoulli counts from the decision log, prior Beta(1, 1)); its lower bound
is the posterior's ``quantile`` (5% by default). The incumbent is the arm with the highest
posterior mean among arms with at least ``min_pulls`` rewarded requests, or the configured
default arm (the model chosen on validation, recommend.serving) while none has. An arm may be
explored (Thompson sampling among the *safe* arms, exploration floor included) only when its
lower bound is at least ``1 - tolerance`` times the incumbent's mean. Every other arm gets exactly
``floor`` probability, so it keeps earning the data that could clear it, and never more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from ..errors import InvalidInput
from .policy import PosteriorTable, ThompsonPolicy


@dataclass(frozen=True)
class GuardSettings:
    """How close to the incumbent an arm must be to be explored, and the floor of the others."""

    default_arm: str = "fused"
    tolerance: float = 0.10
    quantile: float = 0.05
    min_pulls: int = 20
    floor: float = 0.01

    def __post_init__(self) -> None:
        if not 0.0 <= self.tolerance <= 1.0 or not 0.0 < self.quantile < 0.5:
            raise InvalidInput("guard tolerance must be in [0, 1] and quantile in (0, 0.5)")
        if self.min_pulls < 0 or not 0.0 <= self.floor <= 0.05:
            raise InvalidInput("guard min_pulls must be >= 0 and floor in [0, 0.05]")

    @classmethod
    def off(cls, default_arm: str = "fused") -> GuardSettings:
        """No guard: every arm is safe (plain Thompson sampling with its floor)."""
        return cls(default_arm=default_arm, tolerance=1.0, min_pulls=0, floor=0.0)


@dataclass(frozen=True)
class GuardVerdict:
    """Which arms may be explored now, and the numbers behind it (logged with each decision)."""

    incumbent: str
    incumbent_mean: float
    threshold: float
    safe: tuple[str, ...]
    guarded: tuple[str, ...]
    lower_bounds: dict[str, float]
    means: dict[str, float]
    pulls: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["safe"], out["guarded"] = list(self.safe), list(self.guarded)
        return out


def judge(table: PosteriorTable, arms: Sequence[str], settings: GuardSettings) -> GuardVerdict:
    """Split ``arms`` into safe and guarded from the arms' totals in the posterior table."""
    if not arms:
        raise InvalidInput("no eligible arm to choose from")
    means: dict[str, float] = {}
    lows: dict[str, float] = {}
    pulls: dict[str, int] = {}
    for arm in arms:
        total = table.totals.get(arm)
        successes = total.successes if total else 0.0
        failures = total.failures if total else 0.0
        alpha, beta = 1.0 + max(successes, 0.0), 1.0 + max(failures, 0.0)
        means[arm] = alpha / (alpha + beta)
        lows[arm] = float(stats.beta.ppf(settings.quantile, alpha, beta))
        pulls[arm] = total.pulls if total else 0
    proven = [a for a in arms if pulls[a] >= settings.min_pulls]
    if proven:
        incumbent = max(proven, key=lambda a: (means[a], a == settings.default_arm))
    else:
        incumbent = settings.default_arm if settings.default_arm in arms else arms[0]
    threshold = (1.0 - settings.tolerance) * means[incumbent]
    safe = tuple(
        a for a in arms if a == incumbent or (pulls[a] >= settings.min_pulls and lows[a] >= threshold)
    )
    guarded = tuple(a for a in arms if a not in safe)
    rounded = {a: round(v, 5) for a, v in lows.items()}
    return GuardVerdict(
        incumbent, round(means[incumbent], 5), round(threshold, 5), safe, guarded, rounded,
        {a: round(v, 5) for a, v in means.items()}, pulls,
    )  # fmt: skip


def guarded_probabilities(
    policy: ThompsonPolicy, bucket: str, arms: Sequence[str], verdict: GuardVerdict, settings: GuardSettings,
    rng: np.random.Generator,
) -> np.ndarray:  # fmt: skip
    """Thompson probabilities (with the policy's floor) among the safe arms; ``floor`` for each guarded arm."""
    safe = list(verdict.safe)
    probabilities = np.zeros(len(arms))
    guarded_share = settings.floor * len(verdict.guarded)
    inner = (
        policy.mix_floor(policy.thompson_probabilities(bucket, safe, rng)) if len(safe) > 1 else np.ones(1)
    )
    index = {a: i for i, a in enumerate(arms)}
    for arm, p in zip(safe, inner, strict=True):
        probabilities[index[arm]] = (1.0 - guarded_share) * p
    for arm in verdict.guarded:
        probabilities[index[arm]] = settings.floor
    return probabilities / probabilities.sum()


class GuardedThompsonPolicy:
    """ThompsonPolicy behind the guard, for the replay (same rule as BanditService.choose)."""

    def __init__(
        self, settings: GuardSettings, *, min_exploration: float = 0.05, name: str = "thompson-guarded"
    ):
        self.settings = settings
        self.inner = ThompsonPolicy(min_exploration=min_exploration, mc_draws=200)
        self.name = name
        self.explored = 0
        self.steps = 0

    def sample(self, bucket: str, arms: list[str], rng: np.random.Generator) -> int:
        verdict = judge(self.inner.table, arms, self.settings)
        p = guarded_probabilities(self.inner, bucket, arms, verdict, self.settings, rng)
        choice = int(rng.choice(len(arms), p=p))
        self.steps += 1
        self.explored += arms[choice] != verdict.incumbent
        return choice

    def update(self, bucket: str, arm: str, reward: float) -> None:
        self.inner.update(bucket, arm, reward)
