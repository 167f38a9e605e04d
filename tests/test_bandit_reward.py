"""The composite reward and the context bucketing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metamedia.bandit.context import BanditContext, ContextBucketer
from metamedia.bandit.reward import Outcome, RewardWeights, composite_reward
from metamedia.errors import InvalidInput

outcomes = st.one_of(
    st.builds(Outcome, st.just("click")),
    st.builds(Outcome, st.just("skip")),
    st.builds(Outcome, st.just("watch"), st.floats(0.0, 1.0)),
    st.builds(Outcome, st.just("rating"), st.floats(0.0, 10.0)),
)


def test_composite_formula() -> None:
    events = [Outcome("click"), Outcome("watch", 0.5), Outcome("rating", 8.0)]
    assert composite_reward(events) == pytest.approx(0.2 + 0.25 + 0.24)
    assert composite_reward([Outcome("click"), Outcome("skip")]) == 0.0
    assert composite_reward([]) == 0.0
    custom = RewardWeights.from_mapping({"click": 1.0})
    assert composite_reward([Outcome("click")], custom) == 1.0


@given(st.lists(outcomes, max_size=8))
def test_reward_is_always_within_unit_interval(events: list[Outcome]) -> None:
    assert 0.0 <= composite_reward(events) <= 1.0


def test_bad_outcomes_and_weights_are_rejected() -> None:
    with pytest.raises(InvalidInput):
        Outcome("purchase")
    with pytest.raises(InvalidInput):
        Outcome("watch", 1.5)
    with pytest.raises(InvalidInput):
        RewardWeights.from_mapping({"like": 1.0})


def test_bucketing() -> None:
    ctx = BanditContext(
        hour=21, weekday=6, device="TV", session_minutes=90, interactions=50, recent_genres=("Drama",)
    )
    full = ContextBucketer(("daypart", "weekend", "device", "session", "experience", "genre"))
    assert (
        full.bucket(ctx)
        == "daypart=evening|weekend=weekend|device=tv|session=long|experience=experienced|genre=Drama"
    )
    assert ContextBucketer(()).bucket(ctx) == "*"
    assert ContextBucketer.parse("experience").bucket(BanditContext(interactions=49)) == "experience=new"
    with pytest.raises(InvalidInput):
        ContextBucketer(("weather",))
    with pytest.raises(InvalidInput):
        BanditContext.from_mapping({"hour": 25})
    with pytest.raises(InvalidInput):
        BanditContext.from_mapping({"mood": "happy"})
