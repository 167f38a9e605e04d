"""The served model offline, the cold-start splits over several seeds, and their goals in report.json."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from ..recommend.serving import SERVING, FusedRecommender, ServingConfig
from .coldstart import cold_item_evaluation, cold_user_evaluation
from .data import RatingsLog
from .protocol import Phase, RankingResult, evaluate_scores

SERVED = "metamedia-served"
TARGET_SERVED = 0.95
TARGET_COLD_ITEM = 2.0
TARGET_COLD_USER = {1: 1.0, 5: 1.2}
TARGET_BANDIT = 0.95
TARGET_BANDIT_P = 0.05


def served_scores(phase: Phase, config: ServingConfig = SERVING) -> np.ndarray:
    """The served model (same class, same configuration object as the server) on one phase."""
    model = FusedRecommender(config).fit(phase.confidence)
    return model.score(phase.users, history=phase.strength[phase.users])


def served_row(phases: dict[str, Phase], vectors: np.ndarray) -> tuple[dict[str, Any], RankingResult]:
    """The offline row of the served configuration (nothing tuned here: it is SERVING as deployed)."""
    validation = evaluate_scores(served_scores(phases["validation"]), phases["validation"], vectors)
    test = evaluate_scores(served_scores(phases["test"]), phases["test"], vectors)
    row = {
        "name": SERVED,
        "role": "metamedia",
        "description": "what `auto` serves: recommend.serving.SERVING (the object the server uses)",
        "params": serving_params(),
        "validation_ndcg@10": validation.metrics["ndcg@10"],
        "grid": [],
        "test": test.metrics,
        "seconds": 0.0,
    }
    return row, test


def serving_params(config: ServingConfig = SERVING) -> dict[str, Any]:
    out = asdict(config)
    out["popularity_blend"] = {str(k): v for k, v in config.popularity_blend.items()}
    out["recent_popularity_blend"] = {str(k): v for k, v in config.recent_popularity_blend.items()}
    return out


def cold_start_sections(
    log: RatingsLog, strengths: np.ndarray, vectors: np.ndarray, positive: float, seeds: Sequence[int]
) -> dict[str, Any]:
    """Cold-item and cold-user results for every seed."""
    items = [cold_item_evaluation(log, strengths, vectors, positive, seed) for seed in seeds]
    users = [cold_user_evaluation(log, strengths, positive, seed) for seed in seeds]
    return {"cold_items": items, "cold_users": users}


def served_goals(
    best: RankingResult | None, served: RankingResult, replay: dict[str, Any] | None, cold: dict[str, Any],
    chosen: np.ndarray | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Goals of the served path and cold start; each has ``met`` (every seed must meet a cold goal)."""
    goals: dict[str, Any] = {}
    if best is not None:
        ratio = served.metrics["ndcg@10"] / best.metrics["ndcg@10"] if best.metrics["ndcg@10"] else None
        goals["served_model_offline_vs_best"] = {
            "ndcg@10": [served.metrics["ndcg@10"], best.metrics["ndcg@10"]], "ratio": ratio,
            "target": TARGET_SERVED, "met": ratio is not None and ratio >= TARGET_SERVED,
        }  # fmt: skip
    if replay is not None:
        goals["served_replay_vs_offline_best"] = {
            "ndcg@10": [replay["served_ndcg@10"], replay["offline_best_ndcg@10_same_users"]],
            "ratio": replay["ratio"], "ratio_95ci": replay["ratio_95ci"], "users": replay["users"],
            "target": TARGET_SERVED, "met": replay["ratio"] is not None and replay["ratio"] >= TARGET_SERVED,
        }  # fmt: skip
    else:
        goals["served_replay_vs_offline_best"] = {
            "met": False, "ratio": None, "target": TARGET_SERVED,
            "note": "not run: needs the catalog (run with --catalog-vectors on an SQLite store)",
        }  # fmt: skip
    item_ratios = [r["ratio"] for r in cold["cold_items"]]
    goals["cold_item_map_vs_content_only"] = {
        "ratio_per_seed": item_ratios,
        "ratio_95ci_per_seed": [r["ratio_95ci"] for r in cold["cold_items"]],
        "target": TARGET_COLD_ITEM,
        "met": bool(item_ratios) and all(r is not None and r >= TARGET_COLD_ITEM for r in item_ratios),
    }
    for n, target in TARGET_COLD_USER.items():
        ratios = [
            next((row["ratio"] for row in r["rows"] if row["history"] == n), None) for r in cold["cold_users"]
        ]
        intervals = [
            next((row["ratio_95ci"] for row in r["rows"] if row["history"] == n), None)
            for r in cold["cold_users"]
        ]
        goals[f"cold_user_{n}_vs_popularity"] = {
            "ratio_per_seed": ratios, "ratio_95ci_per_seed": intervals, "target": target,
            "met": bool(ratios) and all(r is not None and r >= target for r in ratios),
        }  # fmt: skip
    return goals


def bandit_replay_goal(report: dict[str, Any] | None, source: str) -> dict[str, Any]:
    """The served bandit policy's replay (``metamedia eval bandit``'s report.json at ``source``) as a goal:
    at least TARGET_BANDIT of the best fixed arm and better than uniform with p < TARGET_BANDIT_P."""
    if report is None:
        return {
            "met": False, "ratio": None, "target": TARGET_BANDIT,
            "note": f"no bandit replay report at {source}: run `metamedia eval bandit` first",
        }  # fmt: skip
    goals = report.get("goals", {})
    ratio = goals.get("served_ratio_to_best_fixed")
    p_value = report.get("served_vs_uniform", {}).get("paired_t_over_users", {}).get("p_value")
    return {
        "policy": goals.get("served_policy"), "best_fixed_arm": goals.get("best_fixed_arm"),
        "ratio": ratio, "target": TARGET_BANDIT, "p_vs_uniform": p_value, "p_target": TARGET_BANDIT_P,
        "steps": report.get("steps"), "seeds": report.get("seeds"), "source": source,
        "met": ratio is not None and ratio >= TARGET_BANDIT and p_value is not None and p_value < TARGET_BANDIT_P,
    }  # fmt: skip
