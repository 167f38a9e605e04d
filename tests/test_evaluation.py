"""Offline evaluation: metrics against hand-computed values, the temporal split, and whole runs on real ratings."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from metamedia.errors import DimensionMismatch, IngestError, InvalidInput
from metamedia.evaluation import run_evaluation
from metamedia.evaluation.algorithms import default_algorithms
from metamedia.evaluation.data import load_ratings
from metamedia.evaluation.metrics import (
    average_precision_at_k,
    catalog_coverage,
    hits_matrix,
    intra_list_diversity,
    ndcg_at_k,
    novelty,
    paired_bootstrap_ratio,
    recall_at_k,
)
from metamedia.evaluation.split import interaction_matrix, temporal_split
from tests.conftest import MOVIELENS

SLICE_ROWS = 12_000  # ratings.csv is ordered by user: the first ~80 users


# ----- metrics on tiny hand-computed cases ---------------------------------------------------


def test_hits_mark_relevant_items_at_their_ranks() -> None:
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 1, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
    recommended = np.array([[1, 0, 3], [2, -1, -1]])
    assert hits_matrix(recommended, relevant).tolist() == [[True, False, True], [False, False, False]]


def test_ndcg_recall_and_map_match_hand_computation() -> None:
    # One user, 3 relevant items, hits at ranks 1 and 3 of 10.
    hits = np.zeros((1, 10), dtype=bool)
    hits[0, [0, 2]] = True
    relevant = np.array([3])
    dcg = 1.0 + 1.0 / math.log2(4)
    ideal = 1.0 + 1.0 / math.log2(3) + 1.0 / math.log2(4)
    assert ndcg_at_k(hits, relevant, 10)[0] == pytest.approx(dcg / ideal)
    assert recall_at_k(hits, relevant, 10)[0] == pytest.approx(2 / 3)
    assert average_precision_at_k(hits, relevant, 10)[0] == pytest.approx((1.0 + 2 / 3) / 3)


def test_denominators_are_capped_at_k() -> None:
    # 15 relevant items, the top 5 all hits: a perfect list of length 5.
    hits = np.ones((1, 5), dtype=bool)
    relevant = np.array([15])
    assert ndcg_at_k(hits, relevant, 5)[0] == pytest.approx(1.0)
    assert recall_at_k(hits, relevant, 5)[0] == pytest.approx(1.0)
    assert average_precision_at_k(hits, relevant, 5)[0] == pytest.approx(1.0)
    assert ndcg_at_k(np.zeros((1, 5), dtype=bool), relevant, 5)[0] == 0.0


def test_list_level_metrics_match_hand_computation() -> None:
    recommended = np.array([[0, 1], [1, 2]])
    assert catalog_coverage(recommended, 6) == pytest.approx(3 / 6)
    orthogonal = np.eye(3, dtype=np.float32)
    assert intra_list_diversity(recommended, orthogonal) == pytest.approx(1.0)
    same = np.ones((3, 2), dtype=np.float32) / math.sqrt(2)
    assert intra_list_diversity(recommended, same) == pytest.approx(0.0, abs=1e-6)
    shares = np.array([0.5, 0.25, 0.125])
    assert novelty(recommended, shares) == pytest.approx((1 + 2 + 2 + 3) / 4)
    with pytest.raises(InvalidInput):
        novelty(recommended, np.array([0.5, 0.0, 0.1]))


def test_metrics_refuse_users_without_relevant_items() -> None:
    with pytest.raises(InvalidInput):
        ndcg_at_k(np.zeros((1, 10), dtype=bool), np.array([0]), 10)


def test_paired_bootstrap_brackets_the_observed_ratio() -> None:
    rng = np.random.default_rng(1)
    base = rng.random(300)
    low, high = paired_bootstrap_ratio(base * 1.5, base, seed=0)
    assert low == pytest.approx(1.5) and high == pytest.approx(1.5)
    noisy_low, noisy_high = paired_bootstrap_ratio(rng.random(300), base, seed=0)
    assert noisy_low < noisy_high


# ----- the split ----------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), min_size=1, max_size=80),
    seed=st.integers(0, 3),
)
def test_held_out_rows_are_each_users_latest(rows: list[tuple[int, int]], seed: int) -> None:
    users = np.array([u for u, _ in rows])
    times = np.array([t for _, t in rows], dtype=np.float64)
    held = temporal_split(users, times, seed=seed)
    np.testing.assert_array_equal(held, temporal_split(users, times, seed=seed))
    for user in np.unique(users):
        mine = users == user
        count = int(mine.sum())
        expected = 0 if count < 2 else min(count - 1, math.ceil(0.2 * count))
        assert int(held[mine].sum()) == expected
        if 0 < expected:
            assert times[mine & held].min() >= times[mine & ~held].max()


def test_validation_is_carved_from_training_only() -> None:
    log = load_ratings(MOVIELENS / "ratings.csv", MOVIELENS / "links.csv")
    test = temporal_split(log.users, log.timestamps, seed=0)
    validation = temporal_split(log.users, log.timestamps, ~test, seed=0)
    assert not (test & validation).any()
    assert 0.15 < validation.sum() / (~test).sum() < 0.25
    assert 0.19 < test.mean() < 0.22


def test_interaction_matrix_keeps_the_last_value_of_a_repeated_cell() -> None:
    matrix = interaction_matrix(np.array([0, 0, 1]), np.array([2, 2, 0]), np.array([1.0, 5.0, 3.0]), (2, 3))
    assert matrix.toarray().tolist() == [[0, 0, 5.0], [3.0, 0, 0]]


def test_ratings_without_a_link_are_dropped_and_counted(tmp_path: Path) -> None:
    links = tmp_path / "links.csv"
    lines = (MOVIELENS / "links.csv").read_text(encoding="utf-8").splitlines()
    links.write_text("\n".join(line for line in lines if not line.startswith("1,")) + "\n", encoding="utf-8")
    log = load_ratings(MOVIELENS / "ratings.csv", links)
    assert log.dropped_unlinked == 215  # Toy Story (movieId 1) has 215 ratings
    assert 1 not in set(log.item_ids.tolist())


def test_a_ratings_file_without_the_expected_columns_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "ratings.csv"
    broken.write_text("userId,movieId,score\n1,1,4.0\n", encoding="utf-8")
    with pytest.raises(IngestError, match="timestamp"):
        load_ratings(broken, MOVIELENS / "links.csv")
    with pytest.raises(IngestError):
        load_ratings(tmp_path / "missing.csv", MOVIELENS / "links.csv")


# ----- whole runs on a real slice -----------------------------------------------------------


@pytest.fixture(scope="module")
def ratings_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("movielens")
    lines = (MOVIELENS / "ratings.csv").read_text(encoding="utf-8").splitlines()
    (folder / "ratings.csv").write_text("\n".join(lines[: SLICE_ROWS + 1]) + "\n", encoding="utf-8")
    for name in ("links.csv", "movies.csv"):
        (folder / name).write_bytes((MOVIELENS / name).read_bytes())
    return folder


@pytest.fixture(scope="module")
def two_runs(ratings_slice: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("reports")
    reports = []
    for run in range(2):
        folder = out / f"run{run}"
        report = run_evaluation(
            ratings_slice / "ratings.csv",
            ratings_slice / "links.csv",
            seed=7,
            out_dir=folder,
            algorithms=default_algorithms(quick=True),
            cold_seeds=(7,),
        )
        reports.append({**report, "out_dir": folder})
    return reports


def _metrics(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {row["name"]: row["test"] for row in report["algorithms"]}


def test_a_fixed_seed_gives_the_same_numbers_twice(two_runs: list[dict[str, Any]]) -> None:
    first, second = two_runs
    assert _metrics(first) == _metrics(second)
    assert first["goals"] == second["goals"]


def test_every_algorithm_and_metric_is_reported_in_range(two_runs: list[dict[str, Any]]) -> None:
    report = two_runs[0]
    names = {row["name"] for row in report["algorithms"]}
    assert {"popularity", "item-knn", "ease", "als", "content-static", "metamedia-best"} <= names
    for metrics in _metrics(report).values():
        for name in ("ndcg@10", "recall@20", "map@10", "coverage@10", "diversity@10"):
            assert 0.0 <= metrics[name] <= 1.0, name
        assert metrics["novelty@10"] > 0.0
    assert _metrics(report)["ease"]["ndcg@10"] > _metrics(report)["content-static"]["ndcg@10"]


def test_the_report_documents_data_split_and_goals(two_runs: list[dict[str, Any]]) -> None:
    report = two_runs[0]
    assert report["data"]["content_vectors"].startswith("fallback")
    assert any("fallback" in note for note in report["notes"])
    test = report["phases"]["test"]
    assert test["evaluated_users"] + test["skipped_users_without_positive"] == report["data"]["users"]
    assert test["held_out_positives"] >= test["unreachable_positives"] > 0
    goal = report["goals"]["best_vs_strongest_baseline"]
    assert goal["denominator"] in {"popularity", "item-knn", "ease", "als", "content-static"}
    assert goal["met"] == (goal["ratio"] >= 1.10)
    assert "metamedia-best_vs_content_static" in report["goals"]
    for row in report["algorithms"]:
        if row["grid"]:
            chosen = max(row["grid"], key=lambda tried: tried["validation_ndcg@10"])
            assert row["validation_ndcg@10"] == chosen["validation_ndcg@10"]


def test_the_artefacts_are_written(two_runs: list[dict[str, Any]]) -> None:
    out = Path(two_runs[0]["out_dir"])
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["seed"] == 7
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "| metamedia-best |" in markdown and "NDCG@10" in markdown
    for plot in ("metrics.png", "ndcg_vs_diversity.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_supplied_vectors_of_mixed_dimensions_are_refused(ratings_slice: Path, tmp_path: Path) -> None:
    vectors = {1: np.ones(4, dtype=np.float32), 2: np.ones(5, dtype=np.float32)}
    with pytest.raises(DimensionMismatch):
        run_evaluation(
            ratings_slice / "ratings.csv", ratings_slice / "links.csv", item_vectors=vectors, out_dir=tmp_path
        )


def test_the_served_configuration_and_cold_start_are_reported_with_goals(
    two_runs: list[dict[str, Any]],
) -> None:
    from metamedia.evaluation.served_goals import serving_params
    from metamedia.recommend.serving import SERVING

    report = two_runs[0]
    served = next(row for row in report["algorithms"] if row["name"] == "metamedia-served")
    assert served["params"] == serving_params(SERVING) == report["serving"]["config"]
    assert 0.0 < served["test"]["ndcg@10"] <= 1.0
    low, high = served["test"]["ndcg@10_95ci"]
    assert low <= served["test"]["ndcg@10"] <= high
    goals = report["goals"]
    for part in ("served", "cold_item", "cold_user"):
        keys = [key for key in goals if part in key]
        assert keys and all(isinstance(goals[key]["met"], bool) for key in keys), part
    assert goals["served_replay_vs_offline_best"]["met"] is False  # no catalog engine: not run, not claimed
    [items] = report["serving"]["cold_items"]
    assert items["cold_items"] > 0 and items["params"] in [t["params"] for t in items["validation_grid"]]
    [users] = report["serving"]["cold_users"]
    assert [row["history"] for row in users["rows"]] == [1, 2, 3, 4, 5]
    markdown = (Path(report["out_dir"]) / "report.md").read_text(encoding="utf-8")
    assert (
        "## Cold items" in markdown
        and "## Cold users" in markdown
        and "cold_user_5_vs_popularity" in markdown
    )


def test_the_bandit_replay_goal_needs_its_ratio_and_its_win_over_uniform() -> None:
    from metamedia.evaluation.report_served import goal_line
    from metamedia.evaluation.served_goals import bandit_replay_goal

    def report(ratio: float, p_value: float) -> dict[str, Any]:
        return {
            "goals": {"served_policy": "thompson-guarded", "served_ratio_to_best_fixed": ratio, "best_fixed_arm": "ease"},
            "served_vs_uniform": {"paired_t_over_users": {"p_value": p_value}}, "steps": 10, "seeds": 2,
        }  # fmt: skip

    assert bandit_replay_goal(report(0.97, 0.01), "r.json")["met"]
    assert not bandit_replay_goal(report(0.90, 0.01), "r.json")["met"]
    assert not bandit_replay_goal(report(0.97, 0.20), "r.json")["met"]
    missing = bandit_replay_goal(None, "r.json")
    assert not missing["met"] and "metamedia eval bandit" in goal_line("bandit", missing)
    assert "0.970x" in goal_line("bandit", bandit_replay_goal(report(0.97, 0.01), "r.json"))
