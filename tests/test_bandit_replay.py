"""The MovieLens replay on a small real slice: stream construction, policy runs, the OPE check."""

from __future__ import annotations

import numpy as np
import pytest

from metamedia.bandit.context import ContextBucketer
from metamedia.bandit.policy import FixedArmPolicy
from metamedia.bandit.replay import ope_check, run_policy, run_replay
from metamedia.bandit.replay_data import build_stream
from metamedia.recommend.itemknn import ItemKNNRecommender
from metamedia.recommend.popularity import PopularityRecommender
from tests.conftest import DATA


@pytest.fixture(scope="module")
def stream():  # type: ignore[no-untyped-def]
    return build_stream(DATA, recommenders=[PopularityRecommender(), ItemKNNRecommender()], max_users=80)


def test_stream_holds_every_arms_reward_per_step(stream) -> None:  # type: ignore[no-untyped-def]
    assert stream.arms == ("popularity", "item-knn")
    assert stream.rewards.shape == (len(stream.contexts), 2)
    assert np.all((stream.rewards >= 0) & (stream.rewards <= 1))
    assert stream.rewards.max() > 0.5  # some slates hit a well-rated held-out movie
    assert len(set(stream.users.tolist())) > 50


def test_fixed_policy_replays_its_own_column(stream) -> None:  # type: ignore[no-untyped-def]
    chosen = run_policy(stream, FixedArmPolicy("item-knn"), ContextBucketer(), seed=0)
    assert np.all(chosen == 1)


def test_replay_summary_and_ope_check(stream) -> None:  # type: ignore[no-untyped-def]
    result = run_replay(stream, seeds=3)
    summary = result["summary"]
    best = result["best_fixed_arm"]
    assert summary[f"fixed:{best}"]["ratio_to_best_fixed"] == 1.0
    assert summary["uniform"]["total_reward"] <= summary[f"fixed:{best}"]["total_reward"]
    assert len(result["curves"]["thompson"]) == result["steps"]
    # The served policy stays on the guard's incumbent except for the floors and close arms.
    assert 0.0 <= result["exploration_share"]["thompson-guarded"] < 0.5
    rows = ope_check(stream, ContextBucketer(("experience",)), seed=1)
    for row in rows:
        assert row["dr"]["ci95"][0] - 0.05 <= row["replayed_value"] <= row["dr"]["ci95"][1] + 0.05
