"""Reflexion episodes, skills, hygiene and the nightly learner, with the real embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from metamedia.embed import TextEmbedder
from metamedia.errors import InvalidInput
from metamedia.memory import (
    AgentMemory,
    CausalReranker,
    EpisodeDraft,
    Interaction,
    load_causal_weights,
    run_learner,
)
from metamedia.memory.base import DAY_SECONDS
from metamedia.memory.hygiene import merge_duplicate_episodes
from metamedia.memory.learner import LearnerConfig, last_run
from metamedia.memory.reflexion import analyse_failure
from metamedia.memory.simulator import simulate_interactions

EVENING = {"hour": 21, "day_of_week": 5, "device": "tv", "session_minutes": 120}
LUNCH = {"hour": 12, "day_of_week": 2, "device": "mobile", "session_minutes": 45}


class SteppingClock:
    """A clock the test moves by hand (time windows are part of the behaviour under test)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(scope="module")
def embedder(one_thread_embedder: TextEmbedder) -> TextEmbedder:
    return one_thread_embedder


def draft(title: str, genres: list[str], *, completion: float, action: str = "play", context: dict | None = None,
          user: str = "ana", strategies: list[str] | None = None, factors: dict | None = None) -> EpisodeDraft:  # fmt: skip
    return EpisodeDraft(
        task="recommend films", user_id=user, context=context or EVENING, item_id=title,
        item={"title": title, "genres": genres}, predicted_engagement=0.85, actual_engagement=completion,
        action=action, factors=factors or {"genre_match": 0.9, "rating_alignment": 0.3},
        strategy_ids=strategies or [], recommended=[title],
    )  # fmt: skip


def test_negative_outcomes_get_a_critique_naming_the_over_predicted_factor(
    tmp_path: Path, embedder: TextEmbedder
) -> None:
    memory = AgentMemory(create_engine(f"sqlite:///{tmp_path / 'm.db'}"), embedder, seed=False)
    skipped, abandoned, finished = memory.reflexion.store_many(
        [
            draft("The Shining (1980)", ["Horror"], completion=0.02, action="skip"),
            draft(
                "Alien (1979)",
                ["Horror", "Science Fiction"],
                completion=0.1,
                factors={"runtime_fit": 0.9, "genre_match": 0.3},
            ),
            draft("Amélie (2001)", ["Comedy", "Romance"], completion=0.95),
        ]
    )
    assert not skipped.success and skipped.reward == 0.0 and skipped.failure_keys == ["genre_match:Horror"]
    assert "skipped it" in skipped.critique and "genre_match (Horror)" in skipped.critique
    assert abandoned.negative and "stopped at 10%" in abandoned.critique
    assert (
        abandoned.failure_keys == ["runtime_fit:evening"]
        and "runtime did not suit the evening" in abandoned.critique
    )
    assert finished.success and finished.critique == "" and finished.reward == pytest.approx(0.95)
    with pytest.raises(InvalidInput):
        memory.reflexion.store(draft("Bad", [], completion=1.5))


@settings(max_examples=60, deadline=None)
@given(
    factors=st.dictionaries(st.sampled_from(["genre_match", "runtime_fit", "rating_alignment", "recency"]),
                            st.floats(0.0, 1.0), max_size=4),
    predicted=st.floats(0.0, 1.0),
    actual=st.floats(0.0, 1.0),
)  # fmt: skip
def test_failure_blame_never_exceeds_the_gap(
    factors: dict[str, float], predicted: float, actual: float
) -> None:
    analysis = analyse_failure(factors, predicted, actual, {"genres": ["Drama"]}, {"hour": 20}, "play")
    gap = max(predicted - actual, 0.0)
    assert sum(analysis.over_predicted.values()) <= gap + 1e-3
    assert all(factors.get(f, 0.0) >= 0.5 for f in analysis.over_predicted) or not factors
    if gap < 0.1:
        assert not analysis.over_predicted or not factors


def test_retrieval_filters_by_outcome_reward_time_and_user(tmp_path: Path, embedder: TextEmbedder) -> None:
    clock = SteppingClock()
    memory = AgentMemory(create_engine(f"sqlite:///{tmp_path / 'm.db'}"), embedder, clock=clock, seed=False)
    old = memory.reflexion.store(draft("Halloween (1978)", ["Horror"], completion=0.0, action="skip"))
    clock.now += 10 * DAY_SECONDS
    since = clock.now
    memory.reflexion.store_many(
        [
            draft("The Exorcist (1973)", ["Horror"], completion=0.05, action="skip"),
            draft("Toy Story (1995)", ["Animation", "Comedy"], completion=0.9),
            draft("Heat (1995)", ["Action", "Crime"], completion=0.6),
            draft("Scream (1996)", ["Horror"], completion=0.0, action="skip", user="bo"),
        ]
    )
    query = "the user skipped a scary horror movie in the evening"
    top = memory.reflexion.retrieve(query, k=5)
    assert top[0].episode.item["genres"] == ["Horror"]
    failures = memory.reflexion.retrieve(query, outcome="failure", k=10)
    assert {m.episode.item_id for m in failures} == {
        "Halloween (1978)",
        "The Exorcist (1973)",
        "Scream (1996)",
    }
    assert {m.episode.item_id for m in memory.reflexion.retrieve(query, outcome="success", k=10)} == {
        "Toy Story (1995)",
        "Heat (1995)",
    }
    assert [m.episode.item_id for m in memory.reflexion.retrieve(query, min_reward=0.8)] == [
        "Toy Story (1995)"
    ]
    recent = memory.reflexion.retrieve(query, outcome="failure", since=since, user_id="ana", k=10)
    assert [m.episode.item_id for m in recent] == ["The Exorcist (1973)"]
    assert [m.episode.id for m in memory.reflexion.retrieve(query, until=since - 1)] == [old.id]
    with pytest.raises(InvalidInput):
        memory.reflexion.retrieve(query, outcome="maybe")


def test_duplicate_episodes_merge_and_still_count(tmp_path: Path, embedder: TextEmbedder) -> None:
    memory = AgentMemory(create_engine(f"sqlite:///{tmp_path / 'm.db'}"), embedder, seed=False)
    same = draft("Saw (2004)", ["Horror"], completion=0.0, action="skip")
    first, second, third = memory.reflexion.store_many(
        [same, same, draft("Saw (2004)", ["Horror"], completion=0.9)]
    )
    merges = merge_duplicate_episodes(memory.reflexion)
    assert [(m.survivor, m.merged) for m in merges] == [(first.id, second.id)]
    assert len(memory.reflexion) == 2
    assert memory.reflexion.get(first.id).weight == 2 and memory.reflexion.get(second.id).status == "merged"
    (pattern,) = memory.reflexion.failure_patterns(min_count=2)
    assert (pattern.key, pattern.count) == ("genre_match:Horror", 2)
    assert [e.action for e in memory.history(second.id)] == ["created", "merged"]
    assert memory.reflexion.get(third.id).status == "active"


def test_skills_consolidate_repeated_successes_within_the_window(
    tmp_path: Path, embedder: TextEmbedder
) -> None:
    clock = SteppingClock()
    memory = AgentMemory(create_engine(f"sqlite:///{tmp_path / 'm.db'}"), embedder, clock=clock, seed=False)
    evening = ["genre_preference@v1", "session_fit@v1"]
    memory.reflexion.store_many(
        [
            draft(f"Old {i}", ["Drama"], completion=0.9, context=LUNCH, strategies=["diversity@v1"])
            for i in range(4)
        ]
    )
    clock.now += 60 * DAY_SECONDS  # the lunch successes fall out of a 30-day window
    memory.reflexion.store_many(
        [draft(f"Epic {i}", ["Drama"], completion=0.9, strategies=evening) for i in range(4)]
        + [draft("Epic skipped", ["Drama"], completion=0.0, action="skip", strategies=evening)]
        + [
            draft(f"Rare {i}", ["War"], completion=0.9, context=LUNCH, strategies=["rating_alignment@v1"])
            for i in range(2)
        ]
    )
    report = memory.skills.consolidate(min_attempts=3, min_reward=0.6, window_days=30)
    (skill,) = report.created
    assert skill.task == "recommend films" and skill.context_tags == ["evening"]
    assert (skill.attempts, skill.successes) == (5, 4) and skill.success_rate == pytest.approx(0.8)
    assert skill.mean_reward == pytest.approx(0.9 * 4 / 5)
    assert "genre_preference" in skill.name and "session_fit" in skill.name
    assert memory.skills.consolidate(min_attempts=3, min_reward=0.75, window_days=30).created == []
    hits = memory.skills.search("what works for recommending films on an evening", k=1)
    assert hits[0].skill.id == skill.id
    assert memory.skills.search("anything", min_success_rate=0.9) == []


def test_nightly_learner_changes_memory_and_reports_moat_metrics(
    tmp_path: Path, embedder: TextEmbedder
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    clock = SteppingClock()
    memory = AgentMemory(create_engine(url), embedder, clock=clock)
    failing = [
        draft(f"Long epic {i}", ["History"], completion=0.05, action="skip", strategies=["session_fit@v1"],
              factors={"runtime_fit": 0.9, "genre_match": 0.2})
        for i in range(5)
    ]  # fmt: skip
    winning = [
        draft(f"Comedy {i}", ["Comedy"], completion=0.9, strategies=["genre_preference@v1"]) for i in range(3)
    ]
    stored = memory.reflexion.store_many(failing + winning)
    for ep in stored:
        for sid in ep.strategy_ids:
            memory.bank.record_outcome(sid, success=ep.success, reward=ep.reward)
    log = simulate_interactions(6000, seed=3)
    interactions = [
        Interaction(str(u), f"item{i}", float(y), features=dict(zip(log.feature_names, map(float, x), strict=True)),
                    confounders={"popularity": float(p)})
        for i, (u, x, y, p) in enumerate(zip(log.user_ids, log.features, log.completion, log.popularity, strict=True))
    ]  # fmt: skip
    report = run_learner(
        create_engine(url),
        embedder,
        lambda: interactions,
        clock=clock,
        config=LearnerConfig(causal_bootstrap=100),
    )

    assert report.evolved == [("session_fit@v1", "session_fit@v2")]
    assert report.skills_created == 1
    assert report.top_features == sorted(log.true_effects, key=lambda f: -abs(log.true_effects[f]))[:3]
    assert report.interactions == 6000 and report.users_with_effects == len(set(log.user_ids.tolist()))
    assert any(c.startswith("causal weight runtime_fit: new ->") for c in report.changes)
    # Moat metrics, from what this test put in: genre_preference@v1 is the one used active strategy,
    # and all 9 planted effects come back as confident edges; 3 of 8 episodes succeeded, and the one
    # skill (evening, this task) covers all 8 evening episodes.
    assert report.moat.patterns == 1 + 9
    assert report.moat.skills == 1
    assert report.moat.mean_success == pytest.approx(3 / 8)
    assert report.moat.coverage == pytest.approx(1.0)

    # Everything survives a restart: a fresh memory on a fresh engine sees the learner's work.
    reopened = AgentMemory(create_engine(url), embedder)
    evolved = reopened.bank.get("session_fit@v2")
    assert evolved.params["weight"] < memory.bank.get("session_fit@v1").params["weight"]
    assert reopened.history("session_fit@v2")[0].detail["evidence"]["pattern"] == "runtime_fit:evening"
    weights = load_causal_weights(reopened.engine)
    assert max(weights, key=lambda f: weights[f]) == "runtime_fit"
    assert load_causal_weights(reopened.engine, "user:user0")
    assert CausalReranker(weights).score({"runtime_fit": 1.0}) == pytest.approx(weights["runtime_fit"])
    saved = last_run(reopened.engine)
    assert saved is not None and saved["moat"]["skills"] == 1
    paths = reopened.graph.paths_to(reopened.graph.find_node("outcome", "completion"), k=20)
    assert {p.nodes[0].label for p in paths} == set(log.feature_names)

    second = run_learner(
        create_engine(url),
        embedder,
        lambda: interactions,
        clock=clock,
        config=LearnerConfig(causal_bootstrap=50),
    )
    assert second.evolved == [] and second.skills_created == 0 and second.skills_updated == 1
    assert any("runtime_fit: +0.1" in c for c in second.changes)
