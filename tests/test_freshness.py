"""One freshness rule: every in-memory view rebuilds when the store's generation moved on.

The views: the recommender's catalog snapshot (it used to reload only when the item count
changed, so an edited item kept its old genres in recommendations) and agent memory's strategy
and episode matrices (they used to change only on a manual reload(), so another process's writes
stayed invisible). Two objects over one database file stand in for two processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine as Database
from sqlalchemy import create_engine

from metamedia.embed import TextEmbedder
from metamedia.engine import Engine
from metamedia.memory import ReasoningBank, StrategySpec
from metamedia.memory.reflexion import EpisodeDraft, ReflexionMemory
from metamedia.settings import Settings
from tests.conftest import TMDB_5000, write_csv_slice


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Engine]:
    base = tmp_path_factory.mktemp("fresh")
    eng = Engine(Settings(data_dir=base / "data"), embedder=embedder)
    eng.ingest([write_csv_slice(TMDB_5000, base / "slice.csv", 40)])
    yield eng
    eng.close()


def test_recommendations_see_an_item_update_at_once(engine: Engine) -> None:
    item = next(it for it in engine.store.iter_items() if "Documentary" not in it.genres)
    before = engine.recs.recommend("viewer-1", k=100, genres=["Documentary"])
    assert item.id not in [r["id"] for r in before["results"]]

    generation = engine.store.generation()
    engine.put_item({"title": item.title, "genres": ["Documentary"], "tmdb_id": item.tmdb_id}, item.id)
    assert engine.store.generation() > generation
    assert engine.count() == 40  # same number of items: a count check would not notice

    after = engine.recs.recommend("viewer-1", k=100, genres=["Documentary"])
    assert item.id in [r["id"] for r in after["results"]]


@pytest.fixture
def memory_db(tmp_path: Path) -> Database:
    return create_engine(f"sqlite:///{tmp_path / 'memory.db'}")


def test_a_strategy_written_elsewhere_is_retrieved_without_reload(
    memory_db: Database, one_thread_embedder: TextEmbedder
) -> None:
    here = ReasoningBank(memory_db, one_thread_embedder)
    elsewhere = ReasoningBank(create_engine(str(memory_db.url)), one_thread_embedder)
    assert len(here) == 0
    elsewhere.add(
        StrategySpec(
            title="Short films for a lunch break",
            description="Prefer films under 45 minutes when the session is short.",
            task_type="recommend films",
        ),
        strategy_id="lunch@v1",
    )
    found = here.retrieve("a film for my lunch break", k=1)
    assert [m.strategy.id for m in found] == ["lunch@v1"]

    elsewhere.retire("lunch@v1", status="retired", replaced_by=None, reason="test")
    assert here.retrieve("a film for my lunch break", k=1) == []


def test_an_episode_written_elsewhere_is_retrieved_without_reload(
    memory_db: Database, one_thread_embedder: TextEmbedder
) -> None:
    here = ReflexionMemory(memory_db, one_thread_embedder)
    elsewhere = ReflexionMemory(create_engine(str(memory_db.url)), one_thread_embedder)
    draft = EpisodeDraft(
        task="recommend films", user_id="ana", context={"hour": 20}, item_id="Alien",
        item={"title": "Alien", "genres": ["Horror"]}, predicted_engagement=0.8, actual_engagement=0.1,
        action="skip", factors={"genre_match": 0.9}, strategy_ids=[], recommended=["Alien"],
    )  # fmt: skip
    stored = elsewhere.store(draft)
    assert [m.episode.id for m in here.retrieve("skipped a horror film", k=3)] == [stored.id]
    mine = here.store(EpisodeDraft(**{**draft.__dict__, "item_id": "Heat", "item": {"title": "Heat"}}))
    assert {m.episode.id for m in here.retrieve("skipped a film", k=5)} == {stored.id, mine.id}
    assert len(here) == 2  # its own write was applied once, not appended twice
