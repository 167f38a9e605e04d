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
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from metamedia.cli.recommend import catalog_content
from metamedia.engine import Engine
from metamedia.evaluation import served
from metamedia.evaluation.data import load_ratings
from metamedia.evaluation.harness import HOLDOUT_FRACTION, _content
from metamedia.evaluation.protocol import POSITIVE_RATING, build_phase, evaluate_scores
from metamedia.evaluation.served_goals import served_scores
from metamedia.evaluation.split import temporal_split
from metamedia.recommend.serving import SERVING
from metamedia.recommend.signals import rating_scale_of, rating_strengths
from metamedia.scratch import scratch_engine
from metamedia.settings import Settings

RATINGS = Path("tests/data/movielens-latest-small/ratings.csv")


def _set(name: str, value: object) -> None:
    object.__setattr__(SERVING, name, value)  # frozen for everyone else; this script tries settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--users", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", default="0.5:1000000,0.5:1,0.5:2,1.0:1")
    parser.add_argument("--out", type=Path, default=Path("bench/results/served-tuning.json"))
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
        for weight, slots in grid:
            _set("cold_item_weight", weight)
            _set("cold_item_slots", slots)
            replay.recs.refresh(wait=True)
            result = served.score_replay(replay, offline[replay.chosen], seed=args.seed)
            _set("mmr_lambda", 1.0)
            no_mmr = served.score_replay(replay, offline[replay.chosen], seed=args.seed)
            _set("mmr_lambda", 0.8)
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
