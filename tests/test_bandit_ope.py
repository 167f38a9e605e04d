"""Off-policy estimators recover a known policy value from synthetic logs."""

from __future__ import annotations

import numpy as np
import pytest

from metamedia.bandit.ope import LoggedDecision, off_policy_report
from metamedia.bandit.policy import FixedArmPolicy, UniformPolicy
from metamedia.errors import InvalidInput

ARMS = ("a", "b", "c")
RATES = {"x": (0.2, 0.5, 0.8), "y": (0.7, 0.3, 0.1)}


class MixedPolicy:
    """70% on the best arm of each bucket, the rest spread evenly."""

    name = "mixed"

    def probabilities(self, bucket: str, arms: list[str]) -> np.ndarray:
        p = np.full(len(arms), 0.15)
        p[int(np.argmax(RATES[bucket]))] = 0.7
        return p


def synthetic_log(n: int, seed: int) -> list[LoggedDecision]:
    rng = np.random.default_rng(seed)
    logging_p = np.array([0.5, 0.3, 0.2])  # a non-uniform logger
    log = []
    for _ in range(n):
        bucket = "x" if rng.random() < 0.5 else "y"
        arm = int(rng.choice(3, p=logging_p))
        reward = float(rng.random() < RATES[bucket][arm])
        log.append(LoggedDecision(bucket, ARMS, ARMS[arm], float(logging_p[arm]), reward))
    return log


def true_value(policy: MixedPolicy | FixedArmPolicy) -> float:
    return float(np.mean([policy.probabilities(b, list(ARMS)) @ np.array(r) for b, r in RATES.items()]))


@pytest.mark.parametrize("policy", [FixedArmPolicy("c"), MixedPolicy()])
def test_estimators_recover_known_value(policy: MixedPolicy | FixedArmPolicy) -> None:
    report = off_policy_report(synthetic_log(6000, seed=3), policy)
    truth = true_value(policy)
    for est in (report.ips, report.snips, report.dr):
        assert est.ci_low <= truth <= est.ci_high
        assert abs(est.value - truth) < 0.05
    assert report.dr.std_error < report.ips.std_error


def test_effective_sample_size_of_a_fixed_arm() -> None:
    log = synthetic_log(4000, seed=5)
    report = off_policy_report(log, FixedArmPolicy("c"))
    # Only rows that logged arm c (probability 0.2) carry weight.
    assert report.effective_sample_size == pytest.approx(0.2 * len(log), rel=0.1)
    assert off_policy_report(log, UniformPolicy()).effective_sample_size < len(log)


def test_bad_logs_are_rejected() -> None:
    with pytest.raises(InvalidInput):
        off_policy_report(synthetic_log(1, seed=0), UniformPolicy())
    bad = [LoggedDecision("x", ARMS, "a", 0.0, 1.0)] * 3
    with pytest.raises(InvalidInput):
        off_policy_report(bad, UniformPolicy())
