"""Recommendation benchmark: end-to-end recommend() latency per algorithm and interaction ingest rate.

Run: .venv/bin/python bench/recommend_bench.py [--catalog data/demo-catalog.jsonl.gz] [--data-dir DIR]
         [--requests 200] [--events 1000] [--algorithms auto,fused,popularity] [--out bench/results/recommend.json]

The engine loads the demo catalog with its shipped embeddings and imports the bundled MovieLens
community as the demo server does (reuse --data-dir to skip both next time), fits the models, then
times recommend() for random imported users (end to end: bandit, scoring, re-ranking, agent memory,
result rows) and record_interaction() (validation, commit, preference update, event). Goals for
`auto` (the served default behind the bandit's guard): p50 <= 20 ms and p99 <= 60 ms on the demo
catalog. `auto-repeat` is the same user asking twice in a row (their scored candidate pool is cached
until they write); `cold-start` a user with no history. The machine may be shared: the results
carry every path's ratio to popularity's p50 and p99 in the same run and the load average."""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from metamedia.demo import DemoFiles, load_demo_catalog, load_demo_community
from metamedia.engine import Engine
from metamedia.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paths import repo_relative  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ALGORITHMS = (
    "auto",
    "fused",
    "popularity",
    "trending",
    "content",
    "itemknn",
    "als",
    "ease",
    "graph",
    "hybrid",
)


def percentiles(samples: list[float]) -> dict[str, float]:
    ms = np.array(samples) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=REPO / "data" / "demo-catalog.jsonl.gz")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--algorithms", default=",".join(ALGORITHMS),
        help="comma-separated explicit algorithms to time (auto-repeat and cold start always run)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "recommend.json")
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="recbench-"))
    rng = random.Random(args.seed)
    report: dict[str, object] = {
        "catalog": repo_relative(args.catalog),
        "data_dir": "reused (--data-dir)" if args.data_dir else "a temporary folder",
    }
    run_started = time.perf_counter()
    loads = [os.getloadavg()[0]]
    with Engine(Settings(data_dir=data_dir)) as engine:
        tick = time.perf_counter()
        load_demo_catalog(engine, args.catalog)  # the shipped embeddings: no model run for the demo
        report["items"] = engine.count()
        report["ingest_s"] = round(time.perf_counter() - tick, 1)
        recs = engine.recs
        report["import"] = load_demo_community(engine, args.catalog)
        if report["import"] is None:  # a store not loaded by the demo loader (make bench's shared one)
            files = DemoFiles.beside(args.catalog)  # re-importing is idempotent: duplicates are counted
            report["import"] = recs.import_ratings(files.ratings, files.links)
        report["fit"] = recs.refresh()
        users = sorted(recs.models.fitted().user_rows)
        algorithms = [a for a in args.algorithms.split(",") if a]
        for name in algorithms:  # warm-up: first use opens the bandit and agent memory
            recs.recommend(users[0], 10, algorithm=name)
        latency: dict[str, dict[str, float]] = {}
        for name in algorithms:
            samples = []
            for _ in range(args.requests):
                user = rng.choice(users)
                started = time.perf_counter()
                recs.recommend(user, 10, algorithm=name, context={"hour": 20, "device": "tv"})
                samples.append(time.perf_counter() - started)
            latency[name] = percentiles(samples)
            print(name, latency[name], flush=True)
        repeat = []  # the same user asking again (page reload): served from their cached candidate pool
        for _ in range(args.requests):
            user = rng.choice(users)
            recs.recommend(user, 10, context={"hour": 20, "device": "tv"})
            started = time.perf_counter()
            recs.recommend(user, 10, context={"hour": 20, "device": "tv"})
            repeat.append(time.perf_counter() - started)
        latency["auto-repeat"] = percentiles(repeat)
        print("auto-repeat", latency["auto-repeat"], flush=True)
        report["guard"] = engine.bandit.stats()["guard"]
        cold = []
        for i in range(args.requests):
            started = time.perf_counter()
            recs.recommend(f"bench-cold-{i}", 10)
            cold.append(time.perf_counter() - started)
        latency["cold-start"] = percentiles(cold)
        print("cold-start", latency["cold-start"], flush=True)
        loads.append(os.getloadavg()[0])
        report["recommend_k10"] = latency
        if "popularity" in latency:  # the machine is shared: compare with the cheapest path of the same run
            base = latency["popularity"]
            report["ratio_to_popularity"] = {
                name: {"p50": round(v["p50_ms"] / base["p50_ms"], 2), "p99": round(v["p99_ms"] / base["p99_ms"], 2)}
                for name, v in latency.items()
            }  # fmt: skip
        items = engine.store.item_ids()
        kinds = ("click", "like", "skip", "add_to_list", "view")
        started = time.perf_counter()
        for i in range(args.events):
            user = f"bench-live-{i % 50}"
            if i % 3 == 0:
                recs.record_interaction(user, rng.choice(items), "watch", completion=rng.random(),
                                        idempotency_key=f"bench-{i}")  # fmt: skip
            else:
                recs.record_interaction(
                    user, rng.choice(items), kinds[i % len(kinds)], idempotency_key=f"bench-{i}"
                )
        seconds = time.perf_counter() - started
        report["ingest_events"] = {
            "events": args.events, "seconds": round(seconds, 2), "events_per_s": round(args.events / seconds, 1)
        }  # fmt: skip
        print("ingest", report["ingest_events"], flush=True)
    loads.append(os.getloadavg()[0])
    report["load_average_1min"] = {"min": round(min(loads), 1), "max": round(max(loads), 1)}
    report["run_s"] = round(time.perf_counter() - run_started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
