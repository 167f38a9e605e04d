"""Policies over arms (recommendation algorithms): Thompson sampling, ε-greedy, uniform, fixed.

Thompson sampling keeps a Beta posterior per (context bucket, arm), updated with fractional
Bernoulli counts (reward r in [0, 1] adds r successes and 1 - r failures). A bucket's prior
borrows from the arm's data in the *other* buckets, capped at ``prior_strength``
pseudo-observations, so a sparse bucket starts from what the arm does elsewhere instead of
from nothing. The probability of choosing each arm is the posterior probability of it being
best (Monte Carlo over seeded draws), mixed with a floor: p = (1 - ε)·p_TS + ε/|arms|.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..errors import InvalidInput


class CandidatePolicy(Protocol):
    """Anything that gives a probability per eligible arm in a context bucket."""

    name: str

    def probabilities(self, bucket: str, arms: Sequence[str]) -> np.ndarray:
        """Choice probabilities over ``arms`` (same order), summing to 1."""
        ...


@dataclass
class ArmStats:
    """Fractional Bernoulli counts of one arm in one bucket."""

    successes: float = 0.0
    failures: float = 0.0
    pulls: int = 0


@dataclass
class PosteriorTable:
    """Counts per bucket and arm, per-arm totals, and each arm's prior pseudo-counts."""

    cells: dict[str, dict[str, ArmStats]] = field(default_factory=lambda: defaultdict(dict))
    totals: dict[str, ArmStats] = field(default_factory=dict)
    priors: dict[str, tuple[float, float]] = field(default_factory=dict)

    def cell(self, bucket: str, arm: str) -> ArmStats:
        return self.cells[bucket].setdefault(arm, ArmStats())

    def total(self, arm: str) -> ArmStats:
        return self.totals.setdefault(arm, ArmStats())

    def add(self, bucket: str, arm: str, successes: float, failures: float, pulls: int) -> None:
        """Add counts (negative to take back a reward that a later event replaced)."""
        for stats in (self.cell(bucket, arm), self.total(arm)):
            stats.successes += successes
            stats.failures += failures
            stats.pulls += pulls

    def observe(self, bucket: str, arm: str, reward: float) -> None:
        self.add(bucket, arm, reward, 1.0 - reward, 1)

    def mean(self, arm: str) -> float:
        """Posterior mean of the arm's reward over all buckets."""
        prior_s, prior_f = self.priors.get(arm, (1.0, 1.0))
        t = self.total(arm)
        return (prior_s + t.successes) / (prior_s + prior_f + t.successes + t.failures)


def warm_start_prior(
    table: PosteriorTable, incumbents: Sequence[str], strength: float = 2.0
) -> tuple[float, float]:
    """Prior pseudo-counts for a new arm: the incumbents' mean reward, worth ``strength`` observations."""
    if not incumbents:
        return (1.0, 1.0)
    rate = float(np.mean([table.mean(a) for a in incumbents]))
    return (strength * rate, strength * (1.0 - rate))


def _check_arms(arms: Sequence[str]) -> None:
    if len(arms) == 0:
        raise InvalidInput("no eligible arm to choose from")
    if len(set(arms)) != len(arms):
        raise InvalidInput("eligible arms must be distinct")


class ThompsonPolicy:
    """Bucketed Beta–Bernoulli Thompson sampling with a minimum exploration probability."""

    def __init__(
        self,
        table: PosteriorTable | None = None,
        *,
        min_exploration: float = 0.05,
        prior_strength: float = 4.0,
        mc_draws: int = 1000,
        seed: int = 0,
        name: str = "thompson",
    ) -> None:
        if not 0.0 <= min_exploration <= 1.0:
            raise InvalidInput(f"min_exploration must be in [0, 1], got {min_exploration}")
        if prior_strength < 0 or mc_draws <= 0:
            raise InvalidInput("prior_strength must be >= 0 and mc_draws > 0")
        self.table = table or PosteriorTable()
        self.min_exploration = min_exploration
        self.prior_strength = prior_strength
        self.mc_draws = mc_draws
        self.seed = seed
        self.name = name

    def beta_parameters(self, bucket: str, arms: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Posterior (alpha, beta) per arm in ``bucket``."""
        alpha = np.empty(len(arms))
        beta = np.empty(len(arms))
        for i, arm in enumerate(arms):
            own = self.table.cells.get(bucket, {}).get(arm, ArmStats())
            total = self.table.total(arm)
            prior_s, prior_f = self.table.priors.get(arm, (1.0, 1.0))
            other_s = prior_s + total.successes - own.successes
            other_f = prior_f + total.failures - own.failures
            rate = other_s / (other_s + other_f)
            alpha[i] = 1.0 + self.prior_strength * rate + own.successes
            beta[i] = 1.0 + self.prior_strength * (1.0 - rate) + own.failures
        return alpha, beta

    def thompson_probabilities(
        self, bucket: str, arms: Sequence[str], rng: np.random.Generator
    ) -> np.ndarray:
        """P(arm has the highest posterior draw), estimated from ``mc_draws`` draws."""
        _check_arms(arms)
        alpha, beta = self.beta_parameters(bucket, arms)
        draws = rng.beta(alpha, beta, size=(self.mc_draws, len(arms)))
        wins = np.bincount(np.argmax(draws, axis=1), minlength=len(arms))
        return wins / self.mc_draws

    def mix_floor(self, p_ts: np.ndarray) -> np.ndarray:
        return (1.0 - self.min_exploration) * p_ts + self.min_exploration / len(p_ts)

    def probabilities(self, bucket: str, arms: Sequence[str]) -> np.ndarray:
        """Choice probabilities with the exploration floor; seeded per bucket so they are repeatable."""
        rng = np.random.default_rng([self.seed, zlib.crc32(bucket.encode())])
        return self.mix_floor(self.thompson_probabilities(bucket, arms, rng))

    def sample(self, bucket: str, arms: Sequence[str], rng: np.random.Generator) -> int:
        """One choice with the same distribution as ``probabilities`` (one draw, for fast replays)."""
        _check_arms(arms)
        if rng.random() < self.min_exploration:
            return int(rng.integers(len(arms)))
        alpha, beta = self.beta_parameters(bucket, arms)
        return int(np.argmax(rng.beta(alpha, beta)))

    def update(self, bucket: str, arm: str, reward: float) -> None:
        self.table.observe(bucket, arm, reward)


class EpsilonGreedyPolicy:
    """Best empirical mean in the bucket with probability 1 - ε, uniform otherwise."""

    def __init__(self, epsilon: float = 0.1, *, name: str = "epsilon-greedy") -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise InvalidInput(f"epsilon must be in [0, 1], got {epsilon}")
        self.epsilon = epsilon
        self.table = PosteriorTable()
        self.name = name

    def probabilities(self, bucket: str, arms: Sequence[str]) -> np.ndarray:
        _check_arms(arms)
        cells = self.table.cells.get(bucket, {})
        means = np.array(
            [(c.successes + 1.0) / (c.pulls + 2.0) if (c := cells.get(a)) else 0.5 for a in arms]
        )
        best = np.flatnonzero(means == means.max())
        p = np.full(len(arms), self.epsilon / len(arms))
        p[best] += (1.0 - self.epsilon) / len(best)
        return p

    def sample(self, bucket: str, arms: Sequence[str], rng: np.random.Generator) -> int:
        return int(rng.choice(len(arms), p=self.probabilities(bucket, arms)))

    def update(self, bucket: str, arm: str, reward: float) -> None:
        self.table.observe(bucket, arm, reward)


class UniformPolicy:
    """Every eligible arm equally likely."""

    name = "uniform"

    def probabilities(self, bucket: str, arms: Sequence[str]) -> np.ndarray:
        _check_arms(arms)
        return np.full(len(arms), 1.0 / len(arms))

    def sample(self, bucket: str, arms: Sequence[str], rng: np.random.Generator) -> int:
        return int(rng.integers(len(arms)))

    def update(self, bucket: str, arm: str, reward: float) -> None:
        """Uniform does not learn."""


class FixedArmPolicy:
    """Always the same arm; uniform over the eligible arms when that arm is not among them."""

    def __init__(self, arm: str) -> None:
        self.arm = arm
        self.name = f"fixed:{arm}"

    def probabilities(self, bucket: str, arms: Sequence[str]) -> np.ndarray:
        _check_arms(arms)
        if self.arm not in arms:
            return np.full(len(arms), 1.0 / len(arms))
        p = np.zeros(len(arms))
        p[list(arms).index(self.arm)] = 1.0
        return p

    def sample(self, bucket: str, arms: Sequence[str], rng: np.random.Generator) -> int:
        return int(np.argmax(self.probabilities(bucket, arms)))

    def update(self, bucket: str, arm: str, reward: float) -> None:
        """A fixed arm does not learn."""
