"""The same memory behaviour on both SQL backends (SQLite and a real PostgreSQL), across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from metamedia.embed import TextEmbedder
from metamedia.memory import (
    AgentMemory,
    Candidate,
    Interaction,
    StrategySpec,
    load_causal_weights,
    run_learner,
)
from metamedia.memory.hygiene import merge_duplicate_strategies
from metamedia.memory.learner import LearnerConfig
from metamedia.memory.seeds import SEED_STRATEGIES
from metamedia.memory.simulator import simulate_interactions

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
EVENING = {"hour": 20, "day_of_week": 4, "device": "tv", "session_minutes": 150}
FILMS = [  # MovieLens titles and genres
    ("177", "Lord of Illusions (1995)", ["Horror"]),
    ("220", "Castle Freak (1995)", ["Horror"]),
    ("1974", "Friday the 13th (1980)", ["Horror", "Mystery", "Thriller"]),
    ("1347", "Nightmare on Elm Street, A (1984)", ["Horror", "Thriller"]),
    ("1258", "Shining, The (1980)", ["Horror"]),
    ("2710", "Blair Witch Project, The (1999)", ["Drama", "Horror", "Thriller"]),
    ("1", "Toy Story (1995)", ["Adventure", "Animation", "Family", "Comedy", "Fantasy"]),
    ("3", "Grumpier Old Men (1995)", ["Comedy", "Romance"]),
    ("6", "Heat (1995)", ["Action", "Crime", "Thriller"]),
    ("11", "American President, The (1995)", ["Comedy", "Drama", "Romance"]),
]


@pytest.fixture(scope="module")
def embedder(one_thread_embedder: TextEmbedder) -> TextEmbedder:
    return one_thread_embedder


@pytest.fixture(params=BACKENDS)
def memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'memory.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def candidates() -> list[Candidate]:
    return [
        Candidate(item_id=i, title=t, genres=g, score=0.9 - n * 0.02, runtime=100, vote_average=7.0,
                  features={"genre_match": 0.9, "rating_alignment": 0.3})
        for n, (i, t, g) in enumerate(FILMS)
    ]  # fmt: skip


def test_memory_learns_and_remembers_on_every_backend(memory_url: str, embedder: TextEmbedder) -> None:
    memory = AgentMemory(create_engine(memory_url), embedder)
    for film in [c for c in candidates() if "Horror" in c.genres][:5]:
        memory.record_feedback(user_id="ana", candidate=film, action="skip", completion=0.02, context=EVENING)
    copy = memory.bank.add(StrategySpec(**{**SEED_STRATEGIES[0].__dict__, "family_id": "genre_copy"}))
    assert [(m.survivor, m.merged) for m in merge_duplicate_strategies(memory.bank)] == [
        ("genre_preference@v1", copy.id)
    ]
    memory.bank.evolve(
        "session_fit@v1", changes={"params": {"weight": 0.2}}, evidence={"n": 1}, reason="test"
    )
    cause, effect = memory.graph.node("feature", "runtime_fit"), memory.graph.node("outcome", "completion")
    memory.graph.add_edge([cause], effect, uplift=0.14, confidence=0.99, sample_size=500)
    log = simulate_interactions(3000, seed=1)
    rows = [
        Interaction(str(u), str(n), float(y), features=dict(zip(log.feature_names, map(float, x), strict=True)),
                    confounders={"popularity": float(p)})
        for n, (u, x, y, p) in enumerate(zip(log.user_ids, log.features, log.completion, log.popularity, strict=True))
    ]  # fmt: skip
    run_learner(create_engine(memory_url), embedder, rows, config=LearnerConfig(causal_bootstrap=20))

    reopened = AgentMemory(create_engine(memory_url), embedder)
    result = reopened.reranker.rerank("ana", candidates(), EVENING, {})
    assert result.candidates and not any("Horror" in c.genres for c in result.candidates)
    assert any(n.startswith("avoiding Horror: you skipped 5 of 5 horror picks") for n in result.notes)
    assert reopened.bank.get(copy.id).status == "merged"
    assert [s.id for s in reopened.bank.lineage("session_fit@v2")] == ["session_fit@v1", "session_fit@v2"]
    assert reopened.reflexion.failure_patterns(user_id="ana", min_count=5)[0].key == "genre_match:Horror"
    assert len(reopened.reflexion.retrieve("skipped a horror film", outcome="failure", k=10)) == 5
    weights = load_causal_weights(reopened.engine)
    assert max(weights, key=lambda f: weights[f]) == "runtime_fit"
    paths = reopened.graph.paths_to(reopened.graph.find_node("outcome", "completion"), k=50)
    assert {p.nodes[0].label for p in paths} == set(log.feature_names)
    assert next(p for p in paths if p.nodes[0].label == "runtime_fit").confidence > 0.95
    assert [e.action for e in reopened.history("session_fit@v1")][-1] == "superseded"
