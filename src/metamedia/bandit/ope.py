"""Off-policy estimates of a candidate policy's value from a log of (context, arm, propensity, reward).

IPS: mean of w·r with w = π(a|x) / μ(a|x). Self-normalised IPS: Σ w·r / Σ w (biased, far
lower variance). Doubly robust: mean of Σ_a π(a|x)·q(x, a) + w·(r − q(x, a)), with the
reward model q (per bucket and arm, shrunk to the arm mean) cross-fitted on two halves of
the log so no row's q saw its own reward. 95% intervals are normal approximations
(delta method for SNIPS); the effective sample size is (Σ w)² / Σ w².
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInput
from .policy import CandidatePolicy

Z_95 = 1.959963984540054
SHRINKAGE = 5.0  # pseudo-observations pulling a bucket's mean towards the arm's mean


@dataclass(frozen=True)
class LoggedDecision:
    """One logged decision with a known reward."""

    bucket: str
    arms: tuple[str, ...]
    arm: str
    propensity: float
    reward: float


@dataclass(frozen=True)
class OPEEstimate:
    value: float
    ci_low: float
    ci_high: float
    std_error: float


@dataclass(frozen=True)
class OPEReport:
    """Estimates of one candidate policy's value from a log."""

    policy: str
    n: int
    effective_sample_size: float
    logged_value: float
    ips: OPEEstimate
    snips: OPEEstimate
    dr: OPEEstimate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _normal(values: np.ndarray) -> OPEEstimate:
    mean = float(values.mean())
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("inf")
    return OPEEstimate(mean, mean - Z_95 * se, mean + Z_95 * se, se)


def _snips(weights: np.ndarray, rewards: np.ndarray) -> OPEEstimate:
    total = weights.sum()
    if total <= 0:
        return OPEEstimate(float("nan"), float("nan"), float("nan"), float("inf"))
    value = float((weights * rewards).sum() / total)
    se = float(np.sqrt(np.sum(weights**2 * (rewards - value) ** 2)) / total)
    return OPEEstimate(value, value - Z_95 * se, value + Z_95 * se, se)


class RewardModel:
    """Mean reward per (bucket, arm), shrunk towards the arm's mean, then the global mean."""

    def __init__(self, log: Sequence[LoggedDecision]) -> None:
        self.global_mean = float(np.mean([d.reward for d in log])) if log else 0.0
        arm_sum: dict[str, list[float]] = {}
        cell_sum: dict[tuple[str, str], list[float]] = {}
        for d in log:
            arm_sum.setdefault(d.arm, [0.0, 0.0])
            cell_sum.setdefault((d.bucket, d.arm), [0.0, 0.0])
            for acc in (arm_sum[d.arm], cell_sum[(d.bucket, d.arm)]):
                acc[0] += d.reward
                acc[1] += 1
        self.arm_mean = {
            a: (s + SHRINKAGE * self.global_mean) / (n + SHRINKAGE) for a, (s, n) in arm_sum.items()
        }
        self.cell = cell_sum

    def predict(self, bucket: str, arm: str) -> float:
        prior = self.arm_mean.get(arm, self.global_mean)
        s, n = self.cell.get((bucket, arm), (0.0, 0.0))
        return (s + SHRINKAGE * prior) / (n + SHRINKAGE)


def off_policy_report(log: Sequence[LoggedDecision], policy: CandidatePolicy) -> OPEReport:
    """IPS, SNIPS and DR estimates (with 95% intervals) of ``policy``'s mean reward on ``log``."""
    if len(log) < 2:
        raise InvalidInput("off-policy evaluation needs at least two decisions with a known reward")
    for d in log:
        if not 0.0 < d.propensity <= 1.0:
            raise InvalidInput(f"logged propensity must be in (0, 1], got {d.propensity}")
        if d.arm not in d.arms:
            raise InvalidInput(f"logged arm {d.arm!r} is not among its eligible arms")
    rewards = np.array([d.reward for d in log])
    folds = np.arange(len(log)) % 2
    models = [RewardModel([d for d, f in zip(log, folds, strict=True) if f != k]) for k in (0, 1)]
    weights = np.empty(len(log))
    dr_terms = np.empty(len(log))
    cache: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
    for i, d in enumerate(log):
        key = (d.bucket, d.arms)
        if key not in cache:
            cache[key] = np.asarray(policy.probabilities(d.bucket, list(d.arms)), dtype=np.float64)
        target = cache[key]
        chosen = d.arms.index(d.arm)
        weights[i] = target[chosen] / d.propensity
        model = models[folds[i]]
        predicted = np.array([model.predict(d.bucket, a) for a in d.arms])
        dr_terms[i] = float(target @ predicted) + weights[i] * (d.reward - predicted[chosen])
    ess = float(weights.sum() ** 2 / np.sum(weights**2)) if np.any(weights > 0) else 0.0
    return OPEReport(
        policy=policy.name,
        n=len(log),
        effective_sample_size=ess,
        logged_value=float(rewards.mean()),
        ips=_normal(weights * rewards),
        snips=_snips(weights, rewards),
        dr=_normal(dr_terms),
    )
