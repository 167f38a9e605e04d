"""The shared vocabulary (metamedia.domain) and the layers that now speak it."""

from __future__ import annotations

import asyncio

import pytest

from metamedia.bandit.context import BanditContext, ContextBucketer
from metamedia.domain import RECOMMEND_MAX_K, RequestContext, check_k, daypart, outcome_reward
from metamedia.errors import InvalidInput
from metamedia.mcp.server import build_server, write_tool_names
from metamedia.memory.base import context_tags
from metamedia.recommend.storage import check_context, with_time


def test_one_set_of_day_parts_for_bandit_memory_and_requests() -> None:
    hours = {5: "morning", 12: "lunch", 15: "afternoon", 20: "evening", 23: "late_night", 2: "late_night"}
    bucketer = ContextBucketer(("daypart", "weekend"))
    for hour, name in hours.items():
        assert daypart(hour) == name
        assert RequestContext(hour=hour).daypart == name
        assert name in context_tags({"hour": hour})
        assert bucketer.bucket(BanditContext(hour=hour, weekday=6)) == f"daypart={name}|weekend=weekend"
    with pytest.raises(InvalidInput):
        daypart(24)


def test_the_weekday_the_recommender_stores_is_the_weekday_memory_reads() -> None:
    stored = with_time(check_context({"hour": 21, "weekday": 5}))
    assert "weekend" in context_tags(stored)  # was ignored: memory read only `day_of_week`
    assert "weekday" in context_tags(with_time(check_context({"weekday": 2})))
    older = with_time(check_context({"day_of_week": 6}))
    assert older["weekday"] == 6 and "day_of_week" not in older
    assert RequestContext.from_mapping({"day_of_week": 6}).weekend is True
    with pytest.raises(InvalidInput):
        check_context({"day_of_week": 9})


def test_k_limit_and_rewards_are_declared_once() -> None:
    assert check_k(RECOMMEND_MAX_K, RECOMMEND_MAX_K) == RECOMMEND_MAX_K
    for bad in (0, RECOMMEND_MAX_K + 1, True, 2.0):
        with pytest.raises(InvalidInput, match=f"k must be an integer in 1..{RECOMMEND_MAX_K}"):
            check_k(bad, RECOMMEND_MAX_K)
    assert outcome_reward("like", value=None, scale=None, completion=None) == ("click", 1.0)
    assert outcome_reward("watch", value=None, scale=None, completion=0.4) == ("watch", 0.4)
    assert outcome_reward("rating", value=4.0, scale="five", completion=None) == ("rating", 8.0)
    assert outcome_reward("view", value=None, scale=None, completion=None) is None


def test_write_tools_come_from_the_tools_own_flags() -> None:
    server = build_server(None)  # type: ignore[arg-type]  # listing tools never touches the engine
    writes = asyncio.run(write_tool_names(server))
    assert writes == {"record_interaction", "strategy_store", "strategy_record_outcome", "reflexion_store"}


def test_one_algorithm_registry_for_requests_bandit_http_and_mcp() -> None:
    from typing import get_args

    from metamedia.api.routes_users import Algorithm
    from metamedia.bandit.service import DEFAULT_ARMS
    from metamedia.recommend.registry import ALGORITHM_NAMES, ARM_ALGORITHM, BANDIT_ARMS
    from metamedia.recommend.service import ALGORITHMS

    assert get_args(Algorithm) == ALGORITHM_NAMES == ALGORITHMS
    assert DEFAULT_ARMS == BANDIT_ARMS and set(BANDIT_ARMS) == set(ARM_ALGORITHM)
    assert set(ARM_ALGORITHM.values()) < set(ALGORITHM_NAMES)
