"""BanditService on a real SQLite store: decisions, late rewards, restarts, arm changes, splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import create_engine

from metamedia.bandit.guard import GuardSettings
from metamedia.bandit.policy import FixedArmPolicy
from metamedia.bandit.reward import Outcome
from metamedia.bandit.service import BanditService
from metamedia.bandit.split import TrafficSplit
from metamedia.errors import Conflict, InvalidInput, NotFound

ARMS = ("als", "ease", "popularity")
NEW_USER = {"hour": 20, "weekday": 4, "interactions": 3}


def open_service(path: Path, seed: int = 0, **kwargs: object) -> BanditService:
    return BanditService(create_engine(f"sqlite:///{path / 'bandit.db'}"), ARMS, seed=seed, **kwargs)  # type: ignore[arg-type]


def test_logged_propensities_match_selection_frequencies(tmp_path: Path) -> None:
    service = open_service(tmp_path, seed=11, guard=GuardSettings.off())  # plain Thompson sampling
    for _ in range(30):
        d = service.choose("u0", NEW_USER)
        service.record_reward(d.id, [Outcome("click"), Outcome("watch", 1.0)] if d.arm == "ease" else [])
    probabilities = service.choose("u1", NEW_USER).probabilities
    assert sum(probabilities.values()) == pytest.approx(1.0)
    draws = [service.choose("u1", NEW_USER) for _ in range(400)]  # no rewards: the posterior is fixed
    counts = np.array([sum(d.arm == a for d in draws) for a in probabilities])
    expected = np.mean([[d.probabilities[a] for a in probabilities] for d in draws], axis=0) * len(draws)
    assert stats.chisquare(counts, expected).pvalue > 0.001
    assert max(probabilities, key=lambda a: probabilities[a]) == "ease"
    assert all(d.propensity == d.probabilities[d.arm] for d in draws)


def test_late_events_join_their_decision_once(tmp_path: Path) -> None:
    service = open_service(tmp_path)
    decision = service.choose("u", NEW_USER, served_items=[1, 2, 3])
    assert service.record_reward(decision.id, [Outcome("click")]) == pytest.approx(0.2)
    other = service.choose("u", NEW_USER)
    later = service.record_reward(
        decision.id, [{"kind": "watch", "value": 0.8}, {"kind": "rating", "value": 10}]
    )
    assert later == pytest.approx(0.2 + 0.4 + 0.3)
    arm_stats = {a["name"]: a for a in service.stats()["arms"]}
    assert arm_stats[decision.arm]["rewarded_pulls"] == 1
    assert service.stats()["rewarded"] == 1
    logged = service.logged_decisions()
    assert [d.reward for d in logged] == [pytest.approx(0.9)]
    assert other.id not in {d.arm for d in logged}
    with pytest.raises(NotFound):
        service.record_reward("no-such-decision", [Outcome("click")])


def test_state_survives_restart(tmp_path: Path) -> None:
    service = open_service(tmp_path, seed=3)
    for i in range(20):
        d = service.choose(f"u{i}", NEW_USER)
        service.record_reward(d.id, [Outcome("click")] if d.arm == "als" else [Outcome("skip")])
    service.add_arm("gf-cf")
    before = service.stats()
    service.engine.dispose()
    restarted = open_service(tmp_path, seed=3)
    assert restarted.stats() == before
    assert "gf-cf" in restarted.active_arms()


def test_removing_an_arm_mid_run_is_safe(tmp_path: Path) -> None:
    service = open_service(tmp_path)
    pending = [service.choose("u", NEW_USER) for _ in range(30)]
    removed = pending[0].arm
    version = service.stats()["policy_version"]
    service.remove_arm(removed)
    assert service.stats()["policy_version"] != version
    for d in pending:
        service.record_reward(d.id, [Outcome("click")])
    later = [service.choose("u", NEW_USER, eligible_arms=list(ARMS)) for _ in range(30)]
    assert all(d.arm != removed and removed not in d.probabilities for d in later)
    with pytest.raises(InvalidInput):
        service.choose("u", NEW_USER, eligible_arms=[removed])
    with pytest.raises(InvalidInput):
        service.choose("u", NEW_USER, eligible_arms=["never-registered"])
    with pytest.raises(NotFound):
        service.remove_arm(removed)
    remaining = service.active_arms()
    service.remove_arm(remaining[0])
    with pytest.raises(Conflict):
        service.remove_arm(remaining[1])
    service.add_arm(removed)
    assert removed in service.active_arms()
    with pytest.raises(Conflict):
        service.add_arm(removed)


def test_evaluate_a_fixed_arm_from_the_log(tmp_path: Path) -> None:
    service = open_service(
        tmp_path, seed=5, min_exploration=1.0, guard=GuardSettings.off()
    )  # uniform logging
    rng = np.random.default_rng(0)
    rates = {"als": 0.2, "ease": 0.9, "popularity": 0.4}
    for i in range(150):
        d = service.choose(f"u{i}", NEW_USER)
        service.record_reward(
            d.id, [Outcome("click"), Outcome("watch", 1.0)] if rng.random() < rates[d.arm] else []
        )
    report = service.evaluate({"policy": "fixed", "arm": "ease"})
    assert report["ips"]["ci_low"] <= 0.9 * 0.7 <= report["ips"]["ci_high"]
    assert report["n"] == 150
    assert service.evaluate(FixedArmPolicy("als"))["snips"]["value"] < report["snips"]["value"]
    with pytest.raises(InvalidInput):
        service.evaluate({"policy": "fixed", "arm": "nope"})


def test_traffic_split_is_stable_and_compared(tmp_path: Path) -> None:
    split = TrafficSplit({"control": 0.95, "candidate": 0.05})
    assert [split.variant(u) for u in range(50)] == [split.variant(u) for u in range(50)]
    share = np.mean([split.variant(u) == "candidate" for u in range(20_000)])
    assert share == pytest.approx(0.05, abs=0.006)
    service = open_service(tmp_path, split=split, variant_policies={"candidate": FixedArmPolicy("ease")})
    for user in range(400):
        d = service.choose(user, NEW_USER)
        if d.variant == "candidate":
            assert d.arm == "ease" and d.policy_version == "candidate"
        service.record_reward(d.id, [Outcome("click")] if d.arm == "ease" else [])
    report = service.ab_report()
    assert report["variants"]["candidate"]["mean"] == pytest.approx(0.2)
    assert report["versus_control"]["candidate"]["difference"] > 0
    with pytest.raises(InvalidInput):
        TrafficSplit({"a": 0.5, "b": 0.4})


def test_a_bad_arm_gets_no_traffic_beyond_its_floor(tmp_path: Path) -> None:
    """The guard: an arm whose logged lower bound is far below the incumbent is never explored."""
    guard = GuardSettings(default_arm="ease", tolerance=0.25, min_pulls=20, floor=0.01)
    service = open_service(tmp_path, seed=3, guard=guard, min_exploration=0.3)
    rng = np.random.default_rng(1)
    rates = {"als": 0.85, "ease": 0.9, "popularity": 0.05}
    pulls = {a: 0 for a in ARMS}
    # Logged traffic: every arm gets rewarded requests (as if an earlier, unguarded policy served them).
    for i in range(240):
        arm = ARMS[i % 3]
        d = service.choose(f"log{i}", NEW_USER, [arm])
        pulls[arm] += 1
        service.record_reward(
            d.id, [Outcome("click"), Outcome("watch", 1.0)] if rng.random() < rates[arm] else []
        )
    draws = [service.choose(f"u{i}", NEW_USER) for i in range(300)]
    for d in draws:
        assert d.probabilities["popularity"] == pytest.approx(0.01)
        assert d.guard is not None and d.guard["guarded"] == ["popularity"]
        assert set(d.guard["safe"]) == {"als", "ease"}
    share = sum(d.arm == "popularity" for d in draws) / len(draws)
    assert share <= 0.01 + 3 * (0.01 * 0.99 / len(draws)) ** 0.5
    assert sum(d.arm == "als" for d in draws) > 15  # the close arm is still explored
    stats_now = service.stats()
    assert stats_now["guard"]["now"]["guarded"] == ["popularity"] and stats_now["exploration_share"] > 0
