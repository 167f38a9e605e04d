"""CPU per new query in-process, and the exact answers, for A/B checks of the search path.

Builds (once) a data directory with the first `--rows` TMDB movies (as bench/http_bench.py does),
then runs a fixed set of distinct queries through `Engine.search` on one thread: the load test's
new-query sentences plus the golden and topic queries of the test data (genres, years, "like X",
people, titles). Prints process CPU per query and, with `--dump`, writes every query's ranked ids
and scores, so two versions of the code can be compared answer by answer (`--compare A B`).

    python bench/search_cpu.py --data /tmp/search-cpu-data [--queries 300] [--dump out.json] [--profile]
    python bench/search_cpu.py --compare before.json after.json
    python bench/search_cpu.py --data D --ab BASE_SRC --base-data D0 [--reps 6]   # interleaved A/B, JSON

`--ab` runs this script alternately with PYTHONPATH=BASE_SRC (the `src/` of an earlier commit, e.g.
`git archive <commit> src | tar -x -C /tmp/base`) over `--base-data` (a data directory as that code's
ingest left it) and with this checkout over `--data`, `--reps` times each, checks every answer equal
and writes the CPU figures to bench/results/search-cpu-<time>.json.

To compare two checkouts in one run, alternate them over the same data directory (PYTHONPATH
pointing at each one's src/), several times: the machine is shared, so only interleaved runs compare.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from http_bench import first_rows  # noqa: E402
from load_test import QUERIES, unique_query  # noqa: E402
from machine import describe_machine  # noqa: E402
from metamedia.embed.onnx_export import onnx_model_dir  # noqa: E402
from metamedia.engine import Engine  # noqa: E402
from metamedia.settings import Settings  # noqa: E402
from paths import repo_relative, shared_file  # noqa: E402


def query_set(n: int) -> list[str]:
    """`n` distinct queries: new-query sentences of the load test, then the test data's golden and
    topic queries (every parser branch: filters, "like X", people, titles)."""
    rng = random.Random(20)
    data = ROOT / "tests" / "data"
    golden = [q["q"] for q in json.loads((data / "golden_queries.json").read_text())["queries"]]
    topics = json.loads((data / "topic_queries.json").read_text())
    topic_qs = [q["q"] if isinstance(q, dict) else str(q) for q in _topic_list(topics)]
    sentences = [unique_query(rng, i) for i in range(n)]
    mixed = list(dict.fromkeys([*QUERIES, *golden, *topic_qs]))
    out = list(dict.fromkeys(sentences[: n // 2] + mixed))[:n]
    return out + sentences[n // 2 : n // 2 + n - len(out)]


def _topic_list(topics: Any) -> list[Any]:
    if isinstance(topics, dict):
        for key in ("queries", "topics"):
            if isinstance(topics.get(key), list):
                return list(topics[key])
        return []
    return list(topics)


def answer(engine: Engine, q: str) -> Any:
    """What a user sees of one search: ranked ids, scores, reasons and the parsed query (or the error)."""
    try:
        res = engine.search(q)
    except Exception as exc:  # a query the engine rejects: its error is the answer
        return {"error": type(exc).__name__}
    return [[r["id"], r["score"], r["reasons"]] for r in res["results"]] + [res["query"]]


def open_engine(data: Path, rows: int) -> Engine:
    fresh = not (data / "metamedia.db").exists() and not any(data.glob("*.db"))
    data.mkdir(parents=True, exist_ok=True)
    engine = Engine(Settings(data_dir=data))
    if fresh:
        catalog = first_rows(shared_file("tmdb-5000/tmdb_5000_movies.csv"), rows, data)
        engine.ingest([catalog])
    return engine


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--dump", type=Path)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--passes", type=int, default=3, help="repeat passes without the model's forward pass")
    ap.add_argument("--compare", nargs=2, type=Path)
    ap.add_argument("--ab", type=Path, help="src/ folder of the code to compare against")
    ap.add_argument("--base-data", type=Path)
    ap.add_argument("--reps", type=int, default=6)
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    if args.ab:
        return ab(args)
    engine = open_engine(args.data, args.rows)
    queries = query_set(args.queries)
    for q in ("warm up one", "warm up two: dark 90s thrillers", "movies like alien"):
        engine.search(q)
    prof = cProfile.Profile() if args.profile else None
    answers: dict[str, Any] = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    for q in queries:
        answers[q] = answer(engine, q)
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    out: dict[str, Any] = {"queries": len(queries), "cpu_ms_per_query": round(1000 * cpu / len(queries), 3),
           "wall_ms_per_query": round(1000 * wall / len(queries), 3)}
    # The same queries again with the result cache emptied: every search runs again, its query vector
    # now from the embedder's LRU cache, so this is the CPU of everything but the model's forward pass.
    passes = []
    for _ in range(args.passes):
        engine.result_cache.invalidate()
        cpu0 = time.process_time()
        for q in queries:
            if answer(engine, q) != answers[q]:
                raise SystemExit(f"a repeated search answered differently: {q!r}")
        passes.append(1000 * (time.process_time() - cpu0) / len(queries))
    if passes:
        out["pipeline_cpu_ms_per_query"] = sorted(round(p, 3) for p in passes)
    print(json.dumps(out))
    if args.dump:
        args.dump.write_text(json.dumps(answers, indent=0, sort_keys=True))
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(60)
        pstats.Stats(prof).sort_stats("tottime").print_stats(40)
    engine.close()
    return 0


def ab(args: argparse.Namespace) -> int:
    """Alternate base and this checkout, `reps` times each, in fresh processes; answers must agree."""
    runs: dict[str, list[dict[str, Any]]] = {"base": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for label in ("base", "new") if rep % 2 == 0 else ("new", "base"):
                dump = Path(tmp) / f"{label}.json"
                env = {**os.environ}
                if label == "base":  # the base code reads this checkout's ONNX export (same model files)
                    env["PYTHONPATH"] = str(args.ab)
                    env.setdefault("METAMEDIA_ONNX_DIR", str(onnx_model_dir()))
                data = args.base_data if label == "base" else args.data
                cmd = [sys.executable, __file__, "--data", str(data), "--queries", str(args.queries),
                       "--passes", str(args.passes), "--dump", str(dump)]
                load = os.getloadavg()[0]
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                runs[label].append({**json.loads(out.strip().splitlines()[-1]), "load_avg_1m": round(load, 2)})
                print(label, runs[label][-1], flush=True)
            if compare(Path(tmp) / "base.json", Path(tmp) / "new.json"):
                raise SystemExit("answers differ")

    def median(label: str, key: str) -> float:
        values = [min(r[key]) if isinstance(r[key], list) else r[key] for r in runs[label]]
        return round(statistics.median(values), 3)

    summary = {
        key: {"base": median("base", key), "new": median("new", key),
              "ratio": round(median("new", key) / median("base", key), 3)}
        for key in ("cpu_ms_per_query", "pipeline_cpu_ms_per_query")
    }
    print(json.dumps(summary))
    out_path = ROOT / "bench" / "results" / f"search-cpu-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out_path.write_text(json.dumps({"machine": describe_machine(), "queries": args.queries, "reps": args.reps,
                                    "answers_identical": True, "summary": summary, "runs": runs}, indent=2) + "\n")
    print("wrote", repo_relative(out_path))
    return 0


def compare(a: Path, b: Path) -> int:
    left, right = json.loads(a.read_text()), json.loads(b.read_text())
    diff = [q for q in left if left[q] != right.get(q)]
    print(f"{len(left)} queries, {len(diff)} differ")
    for q in diff[:10]:
        print(" ", q, "\n   ", left[q], "\n   ", right.get(q))
    return 1 if diff or set(left) != set(right) else 0


if __name__ == "__main__":
    raise SystemExit(main())
