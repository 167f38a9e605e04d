"""The served-path replay: test users' histories fed through record_interaction, lists asked of
Engine.recommend with default settings, on a scratch copy of a real engine's store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from metamedia.engine import Engine
from metamedia.evaluation import run_evaluation
from metamedia.evaluation.algorithms import default_algorithms
from metamedia.recommend.storage import interactions
from metamedia.scratch import scratch_engine
from metamedia.settings import Settings
from tests.conftest import MOVIELENS, TMDB_5000, write_csv_slice

SLICE_ROWS = 12_000  # ratings.csv is ordered by user: the first ~80 users


@pytest.mark.slow
def test_replay_scores_the_lists_engine_recommend_serves(tmp_path: Path, embedder: Any) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with Engine(settings, embedder=embedder) as engine:
        engine.ingest([write_csv_slice(TMDB_5000, tmp_path / "slice.csv", 400)])
    ratings = tmp_path / "ratings.csv"
    lines = (MOVIELENS / "ratings.csv").read_text(encoding="utf-8").splitlines()
    ratings.write_text("\n".join(lines[: SLICE_ROWS + 1]) + "\n", encoding="utf-8")
    with scratch_engine(settings, embedder) as scratch:
        report = run_evaluation(
            ratings, MOVIELENS / "links.csv", seed=3, out_dir=tmp_path / "report", movies_csv=MOVIELENS / "movies.csv",
            algorithms=default_algorithms(quick=True), replay_engine=scratch, replay_users=6, cold_seeds=(),
        )  # fmt: skip
        replay = report["serving"]["served_replay"]
        assert (
            replay["users"] == 6 and replay["fed_interactions"] > 0 and replay["requests_while_feeding"] > 0
        )
        with scratch.store.engine.connect() as conn:
            fed = conn.execute(
                select(func.count()).where(interactions.c.idempotency_key.like("replay:%"))
            ).scalar_one()
        assert fed == replay["fed_interactions"]  # every fed rating went through record_interaction
        assert sum(replay["served_arms"].values()) == 6
        assert 0.0 <= replay["served_ndcg@10"] <= 1.0
    goal = report["goals"]["served_replay_vs_offline_best"]
    assert goal["users"] == 6 and goal["met"] == (goal["ratio"] is not None and goal["ratio"] >= 0.95)
    with Engine(settings, embedder=embedder) as original:  # the replay ran on a copy
        with original.store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(interactions)).scalar_one() == 0
