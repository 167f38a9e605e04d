"""Thompson sampling propensities: a distribution, floored, and equal to how often arms are chosen."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from metamedia.bandit.policy import PosteriorTable, ThompsonPolicy, warm_start_prior
from metamedia.errors import InvalidInput

ARMS = ["a", "b", "c", "d"]


def trained_policy(min_exploration: float = 0.05, mc_draws: int = 1000) -> ThompsonPolicy:
    policy = ThompsonPolicy(min_exploration=min_exploration, mc_draws=mc_draws, seed=7)
    rng = np.random.default_rng(0)
    for arm, rate, n in (("a", 0.3, 40), ("b", 0.35, 40), ("c", 0.1, 30), ("d", 0.32, 10)):
        for reward in rng.random(n) < rate:
            policy.update("ctx", arm, float(reward))
    return policy


def test_propensities_are_a_floored_distribution() -> None:
    p = trained_policy().probabilities("ctx", ARMS)
    assert p.sum() == pytest.approx(1.0)
    assert np.all(p >= 0.05 / len(ARMS) - 1e-12)
    assert p[ARMS.index("b")] > p[ARMS.index("c")]


def test_propensities_match_thompson_selection_frequencies() -> None:
    policy = trained_policy(mc_draws=200_000)
    p = policy.probabilities("ctx", ARMS)
    rng = np.random.default_rng(123)
    draws = 20_000
    counts = np.bincount([policy.sample("ctx", ARMS, rng) for _ in range(draws)], minlength=len(ARMS))
    result = stats.chisquare(counts, draws * p)
    assert result.pvalue > 0.001, (counts / draws, p)


def test_unlearned_bucket_borrows_from_other_buckets() -> None:
    policy = ThompsonPolicy(min_exploration=0.0, seed=1)
    for _ in range(200):
        policy.update("old", "good", 0.9)
        policy.update("old", "bad", 0.05)
    p = policy.probabilities("fresh", ["good", "bad"])
    assert p[0] > 0.7


def test_warm_start_prior_is_the_incumbents_mean() -> None:
    table = PosteriorTable()
    for _ in range(100):
        table.observe("x", "a", 0.2)
        table.observe("x", "b", 0.4)
    s, f = warm_start_prior(table, ["a", "b"], strength=2.0)
    assert s + f == pytest.approx(2.0)
    assert s / (s + f) == pytest.approx(0.3, abs=0.02)


def test_no_arms_or_duplicates_are_rejected() -> None:
    policy = ThompsonPolicy()
    with pytest.raises(InvalidInput):
        policy.probabilities("ctx", [])
    with pytest.raises(InvalidInput):
        policy.probabilities("ctx", ["a", "a"])
