"""Causal effect estimation: planted effects are recovered despite popularity confounding."""

from __future__ import annotations

import numpy as np
import pytest

from metamedia.errors import InvalidInput
from metamedia.memory.causal import (
    CausalEstimator,
    FeatureEffect,
    causal_weights,
    estimate_effects,
    top_features,
)
from metamedia.memory.interactions import movielens_interactions, to_arrays
from metamedia.memory.simulator import SimulatedLog, simulate_interactions
from tests.conftest import DATA


@pytest.fixture(scope="module")
def log() -> SimulatedLog:
    return simulate_interactions(20_000, seed=7)


@pytest.fixture(scope="module")
def estimator(log: SimulatedLog) -> CausalEstimator:
    return CausalEstimator(log.features, log.completion, log.feature_names, log.popularity, seed=7)


@pytest.fixture(scope="module")
def effects(estimator: CausalEstimator) -> list[FeatureEffect]:
    return estimator.population(n_bootstrap=300)


def true_top3(log: SimulatedLog) -> list[str]:
    return sorted(log.true_effects, key=lambda f: -abs(log.true_effects[f]))[:3]


def test_aipw_recovers_every_planted_effect_within_ten_percent(
    log: SimulatedLog, effects: list[FeatureEffect]
) -> None:
    assert log.clipped_share < 0.01
    assert {e.feature for e in effects} == set(log.true_effects)
    for e in effects:
        truth = log.true_effects[e.feature]
        assert abs(e.effect - truth) <= 0.1 * abs(truth), (e.feature, e.effect, truth)


def test_aipw_ranks_the_top_three_features_correctly(log: SimulatedLog, effects: list[FeatureEffect]) -> None:
    assert [e.feature for e in top_features(effects, 3)] == true_top3(log)


def test_naive_correlation_is_fooled_by_popularity(log: SimulatedLog, effects: list[FeatureEffect]) -> None:
    naive_top3 = [e.feature for e in sorted(effects, key=lambda e: -abs(e.naive))[:3]]
    assert naive_top3 != true_top3(log)
    naive_misses = [
        e.feature
        for e in effects
        if abs(e.naive - log.true_effects[e.feature]) > 0.1 * abs(log.true_effects[e.feature])
    ]
    assert len(naive_misses) >= 3


def test_bootstrap_intervals_cover_the_truth_and_are_tight(
    log: SimulatedLog, effects: list[FeatureEffect]
) -> None:
    covered = [e.ci_low <= log.true_effects[e.feature] <= e.ci_high for e in effects]
    assert sum(covered) >= len(effects) - 2
    assert all(e.significant and e.confidence > 0.99 for e in effects)
    assert all(e.ci_high - e.ci_low < 0.02 for e in effects)


def test_ipw_also_beats_the_naive_estimate(log: SimulatedLog) -> None:
    ipw = estimate_effects(
        log.features, log.completion, log.feature_names, log.popularity, method="ipw", n_bootstrap=0
    )
    for e in ipw:
        truth = log.true_effects[e.feature]
        assert abs(e.effect - truth) < abs(e.naive - truth) or abs(e.effect - truth) < 0.1 * abs(truth)


def test_per_user_effects_shrink_toward_the_population(
    log: SimulatedLog, estimator: CausalEstimator, effects: list[FeatureEffect]
) -> None:
    per_user = estimator.per_user(log.user_ids, min_rows=20)
    assert set(per_user) == set(log.user_ids.tolist())
    pop = {e.feature: e.effect for e in effects}
    for feature in ("runtime_fit", "genre_match"):
        j = log.feature_names.index(feature)
        for user in list(per_user)[:20]:
            rows = np.flatnonzero(log.user_ids == user)
            raw = float(estimator.psi[rows, j].mean())
            shrunk = per_user[user][feature]
            # Shrunk lies between the user's raw estimate and the population effect.
            assert min(raw, pop[feature]) - 1e-9 <= shrunk <= max(raw, pop[feature]) + 1e-9
        # No planted per-user effect differences: estimates pull close to the population.
        spread = np.std([per_user[u][feature] for u in per_user])
        raw_spread = np.std([estimator.psi[log.user_ids == u, j].mean() for u in list(per_user)])
        assert spread < 0.5 * raw_spread


def test_weights_from_effects_feed_the_reranker(effects: list[FeatureEffect]) -> None:
    weights = causal_weights(effects)
    assert set(weights) == {e.feature for e in effects if e.significant}
    assert weights["runtime_fit"] > weights["recency"]


def test_estimator_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput):
        CausalEstimator(np.zeros((10, 2)), np.zeros(9), ["a", "b"])
    with pytest.raises(InvalidInput):
        CausalEstimator(np.zeros((10, 2)), np.zeros(10), ["a"])
    with pytest.raises(InvalidInput):
        CausalEstimator(np.full((10, 1), np.nan), np.zeros(10), ["a"])
    with pytest.raises(InvalidInput):
        CausalEstimator(np.zeros((10, 1)), np.zeros(10), ["a"], method="magic")


def test_movielens_interactions_have_no_look_ahead() -> None:
    rows = movielens_interactions(DATA / "movielens-latest-small")
    assert len(rows) == 100_836
    assert all(0.0 <= r.completion <= 1.0 for r in rows)
    first_of_user: dict[str, bool] = {}
    for r in rows:
        if r.user_id not in first_of_user:
            first_of_user[r.user_id] = True
            # Nothing is known about a user before their first rating.
            assert r.features["genre_match"] == 0.0 and r.features["familiarity"] == 0.0
            assert r.confounders["user_activity"] == 0.0
    arrays = to_arrays(rows[:5000])
    assert arrays.features.shape == (5000, len(arrays.feature_names))
    assert set(arrays.feature_names) == {
        "genre_match",
        "familiarity",
        "recency",
        "rating_alignment",
        "time_of_day",
    }
