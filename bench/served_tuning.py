"""Served-path replay on the *validation* split: tunables of the served list chosen without test users.

Run: .venv/bin/python bench/served_tuning.py --data-dir DIR [--users 120] [--seed 0]
         [--grid 0.5:1000000,0.5:1,0.5:2,1.0:1] [--out bench/results/served-tuning.json]

DIR is a data folder with the demo catalog loaded (`metamedia serve` with the demo, or
`engine.ingest(["data/demo-catalog.jsonl.gz"])`); the replay runs on a scratch copy of it. The
validation users' histories up to their validation split are fed through ``record_interaction``
once (evaluation.served.feed_replay); then for each ``weight:slots`` of the grid the served model is
refitted with ``cold_item_weight`` and ``cold_item_slots`` set so, and every sampled user is asked at
the split point (`auto`, `fused` without the bandit, and `auto` with MMR off). The test users are
never looked at. SERVING is changed in this process only (the object the server and the evaluation
share), which is exactly what makes the refit serve the candidate setting.

``--memory-ablation`` instead scores `fused` at the split point with agent memory's rules switched off in
turn (none, diversity, session_fit, all) and the hour stated or not, for MMR lambdas 0.8 and 1.0 (the
diagnosis of bench/README.md's served-path section: which step of the served list costs what).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from metamedia.cli.recommend import catalog_content
from metamedia.engine import Engine
from metamedia.evaluation import served
from metamedia.evaluation.data import load_ratings
from metamedia.evaluation.harness import HOLDOUT_FRACTION, _content
from metamedia.evaluation.metrics import ndcg_at_k
from metamedia.evaluation.protocol import POSITIVE_RATING, build_phase, evaluate_scores
from metamedia.evaluation.served_goals import served_scores
from metamedia.evaluation.split import temporal_split
from metamedia.memory import reranker
from metamedia.memory.rules import Candidate, RuleResult
from metamedia.recommend.serving import SERVING
from metamedia.recommend.signals import rating_scale_of, rating_strengths
from metamedia.scratch import scratch_engine
from metamedia.settings import Settings

RATINGS = Path("tests/data/movielens-latest-small/ratings.csv")
SERVING_MMR = SERVING.mmr_lambda


def _set(name: str, value: object) -> None:
    object.__setattr__(SERVING, name, value)  # frozen for everyone else; this script tries settings


DISABLED: set[str] = set()
_apply_rule = reranker.apply_rule


def _apply_unless_disabled(
    name: str, candidates: list[Candidate], context: Mapping[str, Any], user_stats: Mapping[str, Any],
    params: Mapping[str, Any],
) -> RuleResult:  # fmt: skip
    if name in DISABLED or "all" in DISABLED:
        return RuleResult(list(candidates))
    return _apply_rule(name, candidates, context, user_stats, params)


def _fused_ndcg(replay: served.Replay, context: dict[str, int] | None) -> float:
    total = 0.0
    for position, name in enumerate(replay.names):
        rows = replay.recs.recommend(name, 10, algorithm="fused", context=context)["results"]
        served_ids = [replay.index_of_item.get(int(row["id"]), -1) for row in rows]
        hits = [[i in replay.wanted[position] for i in served_ids] + [False] * (10 - len(served_ids))]
        total += float(ndcg_at_k(np.array(hits, dtype=bool), np.array([len(replay.wanted[position])]), 10)[0])
    return total / len(replay.names)


def memory_ablation(replay: served.Replay, offline: float) -> list[dict[str, object]]:
    """`fused` NDCG@10 at the split point per (memory rules off, stated hour, MMR lambda)."""
    reranker.apply_rule = _apply_unless_disabled
    rows: list[dict[str, object]] = []
    for lam in (0.8, 1.0):
        _set("mmr_lambda", lam)
        for off in ((), ("diversity",), ("session_fit",), ("all",)):
            for hour in (None, 9, 12, 20):
                DISABLED.clear()
                DISABLED.update(off)
                score = _fused_ndcg(replay, None if hour is None else {"hour": hour})
                row = {
                    "mmr_lambda": lam,
                    "rules_off": list(off),
                    "hour": hour,
                    "ndcg@10": score,
                    "ratio": score / offline,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    DISABLED.clear()
    _set("mmr_lambda", SERVING_MMR)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--users", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", default="0.5:1000000,0.5:1,0.5:2,1.0:1")
    parser.add_argument("--out", type=Path, default=Path("bench/results/served-tuning.json"))
    parser.add_argument("--memory-ablation", action="store_true")
    args = parser.parse_args()
    grid = [(float(w), int(s)) for w, s in (pair.split(":") for pair in args.grid.split(","))]
    links = RATINGS.parent / "links.csv"
    settings = Settings().replace(data_dir=args.data_dir)
    with Engine(settings) as engine:
        catalog_vectors, catalog_genres = catalog_content(engine, links)
    log = load_ratings(RATINGS, links)
    vectors, _, _ = _content(log, catalog_vectors, catalog_genres, RATINGS.parent / "movies.csv")
    strengths = rating_strengths(log.ratings, rating_scale_of(log.ratings))
    held = temporal_split(log.users, log.timestamps, holdout_fraction=HOLDOUT_FRACTION, seed=args.seed)
    val = temporal_split(log.users, log.timestamps, ~held, holdout_fraction=HOLDOUT_FRACTION, seed=args.seed)
    positive = POSITIVE_RATING[rating_scale_of(log.ratings)]
    phase = build_phase("validation", log, strengths, ~held & ~val, val, positive)
    offline = evaluate_scores(served_scores(phase), phase, vectors).ndcg_per_user
    started = time.perf_counter()
    rows = []
    with scratch_engine(settings) as scratch:
        replay = served.feed_replay(scratch, log, phase, held | val, links, sample=args.users, seed=args.seed)
        fed_seconds = round(time.perf_counter() - started, 1)
        if args.memory_ablation:
            replay.recs.refresh(wait=True)
            grid = []
            rows = memory_ablation(replay, float(offline[replay.chosen].mean()))
        for weight, slots in grid:
            _set("cold_item_weight", weight)
            _set("cold_item_slots", slots)
            replay.recs.refresh(wait=True)
            result = served.score_replay(replay, offline[replay.chosen], seed=args.seed)
            _set("mmr_lambda", 1.0)
            no_mmr = served.score_replay(replay, offline[replay.chosen], seed=args.seed)
            _set("mmr_lambda", SERVING_MMR)
            row = {
                "cold_item_weight": weight, "cold_item_slots": slots, "ratio": result["ratio"],
                "ratio_95ci": result["ratio_95ci"], "served_arms": result["served_arms"],
                "served_outside_ratings_share": result["served_outside_ratings_share"],
                "ndcg@10": {**result["diagnosis_ndcg@10"], "auto with MMR off": no_mmr["served_ndcg@10"]},
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {
        "split": "validation", "seed": args.seed, "replay": replay.info, "feed_seconds": fed_seconds,
        "seconds": round(time.perf_counter() - started, 1), "grid": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
