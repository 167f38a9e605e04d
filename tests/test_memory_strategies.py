"""ReasoningBank and the memory reranker with the real embedder: memory changes what we recommend."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from metamedia.embed import TextEmbedder
from metamedia.errors import Conflict, InvalidInput
from metamedia.memory import AgentMemory, Candidate, ReasoningBank, StrategySpec
from metamedia.memory.hygiene import merge_duplicate_strategies
from metamedia.memory.seeds import RECOMMEND_TASK, SEED_STRATEGIES, seed_strategies
from metamedia.vocab import canonical_genres
from tests.conftest import DATA

EVENING = {"hour": 20, "day_of_week": 4, "device": "tv", "session_minutes": 150}


@pytest.fixture(scope="module")
def embedder(one_thread_embedder: TextEmbedder) -> TextEmbedder:
    return one_thread_embedder


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return create_engine(f"sqlite:///{tmp_path / 'memory.db'}")


def movielens_candidates() -> list[Candidate]:
    """Real MovieLens titles: horror films first (the base recommender's favourites), then others."""
    with (DATA / "movielens-latest-small" / "movies.csv").open(newline="", encoding="utf-8") as fh:
        movies = list(csv.DictReader(fh))
    horror = [m for m in movies if "Horror" in m["genres"].split("|")][:15]
    others = [m for m in movies if "Horror" not in m["genres"] and m["genres"] != "(no genres listed)"][:40]
    out = []
    for rank, movie in enumerate(horror + others):
        genres = canonical_genres(movie["genres"].split("|"))
        out.append(
            Candidate(
                item_id=movie["movieId"],
                title=movie["title"],
                genres=genres,
                score=0.95 - rank * 0.01,
                runtime=95 + (rank * 7) % 50,
                vote_average=6.0 + (rank % 7) * 0.4,
                features={"genre_match": 0.9 if "Horror" in genres else 0.6, "rating_alignment": 0.6},
            )  # fmt: skip
        )
    return out


def test_retrieval_finds_the_strategy_that_fits_the_question(engine: Engine, embedder: TextEmbedder) -> None:
    bank = ReasoningBank(engine, embedder)
    seed_strategies(bank)
    best = {
        "I only have a 40 minute lunch break, what film fits?": "session_fit",
        "only show films on the streaming services I subscribe to": "platform_availability",
        "add more variety to the list of recommendations": "diversity",
        "never recommend movies rated below my minimum rating": "rating_alignment",
        "learn which genres this viewer likes from their history": "genre_preference",
    }
    for question, family in best.items():
        assert bank.retrieve(question, k=1)[0].strategy.family_id == family, question


def test_a_strategy_with_poor_outcomes_falls_below_a_similar_successful_one(
    engine: Engine, embedder: TextEmbedder
) -> None:
    bank = ReasoningBank(engine, embedder)
    spec = StrategySpec(
        title="Late-night thriller picks",
        description="Suggest tense thrillers for viewers watching late at night.",
        task_type=RECOMMEND_TASK,
    )
    good = bank.add(spec, strategy_id="thrillers_a@v1")
    bad = bank.add(
        StrategySpec(**{**spec.__dict__, "title": "Late night thriller picks"}), strategy_id="thrillers_b@v1"
    )
    query = "what should a viewer watch late at night? something tense"
    before = [m.strategy.id for m in bank.retrieve(query, k=2)]
    for _ in range(8):
        bank.record_outcome(good.id, success=True, reward=0.9)
        bank.record_outcome(bad.id, success=False, reward=0.05)
    after = bank.retrieve(query, k=2)
    assert [m.strategy.id for m in after] == [good.id, bad.id]
    assert after[0].success == pytest.approx(9 / 10) and after[1].success == pytest.approx(1 / 10)
    assert after[0].confidence - after[1].confidence > 0.2
    # Confidence floor: the failing strategy no longer clears a floor the good one clears.
    floor = (after[0].confidence + after[1].confidence) / 2
    assert [m.strategy.id for m in bank.retrieve(query, k=2, min_confidence=floor)] == [good.id]
    assert set(before) == {good.id, bad.id}


def test_context_match_prefers_strategies_tagged_for_the_moment(
    engine: Engine, embedder: TextEmbedder
) -> None:
    bank = ReasoningBank(engine, embedder)
    base = {"description": "Pick films that suit when people watch.", "task_type": RECOMMEND_TASK}
    evening = bank.add(
        StrategySpec(title="Watch-time picks", tags=["evening"], **base), strategy_id="evening@v1"
    )
    lunch = bank.add(StrategySpec(title="Watch-time picks", tags=["lunch"], **base), strategy_id="lunch@v1")
    assert bank.retrieve("films for now", context={"hour": 21}, k=1)[0].strategy.id == evening.id
    assert bank.retrieve("films for now", context={"hour": 12}, k=1)[0].strategy.id == lunch.id


def test_evolve_keeps_lineage_and_the_old_versions_history(engine: Engine, embedder: TextEmbedder) -> None:
    bank = ReasoningBank(engine, embedder)
    seed_strategies(bank)
    v1 = bank.get("session_fit@v1")
    for _ in range(3):
        bank.record_outcome(v1.id, success=False, reward=0.1)
    v2 = bank.evolve(
        v1.id, changes={"params": {"weight": 0.2}}, evidence={"failures": 3}, reason="evening skips"
    )
    v3 = bank.evolve(
        v2.id,
        changes={"heuristics": [*v2.heuristics, "Avoid epics after 22:00."]},
        evidence={},
        reason="late skips",
    )
    assert [s.id for s in bank.lineage(v3.id)] == ["session_fit@v1", "session_fit@v2", "session_fit@v3"]
    assert v3.params["weight"] == 0.2 and v3.params["evening_min_runtime"] == v1.params["evening_min_runtime"]
    old = bank.get(v1.id)
    assert (old.status, old.replaced_by, old.uses) == ("superseded", v2.id, 3)
    assert [e.action for e in bank.history(v1.id)] == [
        "created",
        "outcome",
        "outcome",
        "outcome",
        "superseded",
    ]
    assert bank.history(v2.id)[0].detail["evidence"] == {"failures": 3}
    retrieved = {m.strategy.id for m in bank.retrieve("match runtime to the session length", k=10)}
    assert v3.id in retrieved and v1.id not in retrieved and v2.id not in retrieved
    with pytest.raises(Conflict):
        bank.evolve(v1.id, changes={}, evidence={}, reason="stale")
    with pytest.raises(InvalidInput):
        bank.evolve(v3.id, changes={"family_id": "other"}, evidence={}, reason="no")


def test_near_duplicate_strategies_are_merged_with_their_statistics(
    engine: Engine, embedder: TextEmbedder
) -> None:
    bank = ReasoningBank(engine, embedder)
    seed_strategies(bank)
    duplicate = bank.add(StrategySpec(**{**SEED_STRATEGIES[4].__dict__, "family_id": "diversity_copy"}))
    for _ in range(4):
        bank.record_outcome(duplicate.id, success=True, reward=1.0)
    bank.record_outcome("diversity@v1", success=False, reward=0.0)
    merges = merge_duplicate_strategies(bank)
    assert [(m.survivor, m.merged) for m in merges] == [(duplicate.id, "diversity@v1")]
    survivor = bank.get(duplicate.id)
    assert (survivor.uses, survivor.successes) == (5, 4)
    assert bank.get("diversity@v1").status == "merged"
    assert len(bank) == len(SEED_STRATEGIES)
    assert bank.history("diversity@v1")[-1].action == "merged"
    assert merge_duplicate_strategies(bank) == []


def test_strategies_and_statistics_survive_a_restart(tmp_path: Path, embedder: TextEmbedder) -> None:
    url = f"sqlite:///{tmp_path / 'memory.db'}"
    bank = ReasoningBank(create_engine(url), embedder)
    seed_strategies(bank)
    bank.record_outcome("rating_alignment@v1", success=True, reward=0.8)
    bank.evolve("diversity@v1", changes={"params": {"diverse_share": 0.2}}, evidence={}, reason="test")
    reopened = ReasoningBank(create_engine(url), embedder)
    assert seed_strategies(reopened) == []
    assert reopened.get("rating_alignment@v1").successes == 1
    assert [s.id for s in reopened.lineage("diversity@v2")] == ["diversity@v1", "diversity@v2"]
    hits = reopened.retrieve("mix in some variety", k=1)
    assert hits[0].strategy.id == "diversity@v2"


def test_a_user_who_skips_every_horror_film_stops_getting_horror(
    engine: Engine, embedder: TextEmbedder
) -> None:
    memory = AgentMemory(engine, embedder)
    candidates = movielens_candidates()
    horror_shown, skips, last_notes = [], 0, []
    for _ in range(12):
        result = memory.reranker.rerank("ana", candidates, EVENING, {})
        shown = result.candidates[:10]
        horror_shown.append(sum("Horror" in c.genres for c in shown))
        last_notes = result.notes
        pick = shown[0]
        skipped = "Horror" in pick.genres
        skips += skipped
        memory.record_feedback(
            user_id="ana", candidate=pick, action="skip" if skipped else "complete",
            completion=0.03 if skipped else 0.95, context=EVENING, recommended=[c.item_id for c in shown],
        )  # fmt: skip
        candidates = [c for c in candidates if c.item_id != pick.item_id]
    assert horror_shown[0] >= 5
    assert skips <= 6, "horror should stop after a handful of skips"
    assert horror_shown[-1] == 0 and horror_shown[skips:] == [0] * (12 - skips)
    assert any(
        note.startswith(f"avoiding Horror: you skipped {skips} of {skips} horror picks")
        for note in last_notes
    )
    constraint = memory.users.constraints("ana")[0]
    assert (constraint.kind, constraint.subject) == ("exclude_genre", "Horror")
    failures = memory.reflexion.episodes(user_id="ana")[:skips]
    assert all("genre_match (" in ep.critique and "Horror" in ep.critique for ep in failures)
    # Comedy and drama keep coming.
    final = memory.reranker.rerank("ana", candidates, EVENING, {}).candidates[:10]
    assert any("Comedy" in c.genres for c in final) and any("Drama" in c.genres for c in final)


def test_contradicting_evidence_lifts_an_exclusion_but_keeps_its_history(
    engine: Engine, embedder: TextEmbedder
) -> None:
    memory = AgentMemory(engine, embedder)
    horror = [c for c in movielens_candidates() if "Horror" in c.genres]
    for film in horror[:5]:
        memory.record_feedback(user_id="bo", candidate=film, action="skip", completion=0.02, context=EVENING)
    (constraint,) = memory.users.constraints("bo")
    for film in horror[5:8]:  # found through search and watched to the end
        memory.record_feedback(
            user_id="bo", candidate=film, action="complete", completion=0.97, context=EVENING
        )
    assert memory.users.constraints("bo") == []
    after = memory.reranker.rerank("bo", horror[8:], EVENING, {})
    assert after.candidates and not after.notes
    actions = [e.action for e in memory.history(f"constraint:{constraint.id}")]
    assert actions == ["created", "evidence_reset", "superseded"]
    assert memory.users.get_constraint(constraint.id).status == "superseded"


def test_a_strategy_that_keeps_failing_stops_being_applied(engine: Engine, embedder: TextEmbedder) -> None:
    memory = AgentMemory(engine, embedder)
    candidates = movielens_candidates()[15:]
    first = memory.reranker.rerank("cy", candidates, EVENING, {})
    assert "diversity@v1" in first.strategy_ids
    injected = [c for c in first.candidates[:10] if "diversity@v1" in c.strategy_ids]
    assert injected
    for pick in (injected * 10)[:10]:  # ten variety picks in a row are skipped
        memory.record_feedback(user_id="cy", candidate=pick, action="skip", completion=0.0, context=EVENING)
    later = memory.reranker.rerank("cy", candidates, EVENING, {})
    assert "diversity@v1" not in later.strategy_ids
    assert [c.item_id for c in later.candidates[:3]] == [c.item_id for c in first.candidates[:3]]
