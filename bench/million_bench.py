"""One million 384-d vectors in <= 500 MB RSS: build, reopen and serve a `CompactCollection`.

    .venv/bin/python bench/million_bench.py --n 1000000 [--queries 300] [--keep DIR]

Three processes, so each RSS is its own: `build` streams seeded clustered vectors (chunks of
25k; the full set never sits in memory) into a CompactCollection and saves it; `truth` computes
exact top-10 answers on the original float32 vectors (unfiltered, 1% and 10% filters); `serve`
opens the saved collection and answers one query at a time. Recorded: build time and peak RSS,
serving RSS after open / after the queries (steady) and the serving process's peak (VmHWM),
anonymous vs file-backed resident memory, p50/p99, recall@10 unfiltered and filtered, disk use.
Results: bench/results/million-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import describe_machine  # noqa: E402

DIM, K, CHUNK, CLUSTERS = 384, 10, 25_000, 1000
FILTERS: dict[str, tuple[int, int]] = {"1%": (0, 0), "10%": (0, 9)}  # bucket = id % 100
GOAL_MB, GOAL_RECALL = 500.0, 0.95


def memory() -> dict[str, float]:
    """Resident memory of this process in MB: total, peak (VmHWM), anonymous and file-backed."""
    wanted = {"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb", "RssAnon": "anon_mb", "RssFile": "file_mb"}
    out = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            name = line.split(":")[0]
            if name in wanted:
                out[wanted[name]] = round(int(line.split()[1]) / 1024, 1)
    return out


def chunks(n: int, seed: int):  # type: ignore[no-untyped-def]
    """(ids, float32 vectors) of the dataset, 25k at a time, identical in every process."""
    from metamedia.vectors.synthetic import ClusteredDataset  # deferred: bench process start stays light

    dataset = ClusteredDataset(DIM, CLUSTERS, seed=seed)
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        yield np.arange(start, start + size, dtype=np.int64), dataset.sample(size, seed=seed + 1 + start)[0]


def queries(count: int, seed: int) -> np.ndarray:
    from metamedia.vectors.synthetic import ClusteredDataset  # deferred: bench process start stays light

    return ClusteredDataset(DIM, CLUSTERS, seed=seed).sample(count, seed=seed + 10**9)[0]


def build(args: argparse.Namespace) -> dict[str, Any]:
    from metamedia.vectors import CompactCollection  # deferred: bench process start stays light

    started = time.perf_counter()
    collection = CompactCollection.create(
        args.dir, dim=DIM, fields=("bucket",), nlist=args.nlist, pq_m=args.pq_m, train_size=args.train_size
    )
    for ids, vectors in chunks(args.n, args.seed):
        collection.add(ids, vectors, {"bucket": ids % 100})
    collection.save()
    seconds = time.perf_counter() - started
    disk = sum(path.stat().st_size for path in Path(args.dir).iterdir())
    return {
        "build_s": round(seconds, 1),
        "vectors_per_s": round(args.n / seconds, 1),
        "memory": memory(),
        "in_memory_bytes": collection.memory_bytes(),
        "disk_bytes": disk,
        "disk_bytes_per_vector": round(disk / args.n, 1),
    }


def truth(args: argparse.Namespace) -> dict[str, Any]:
    import faiss  # deferred: bench process start stays light

    query = queries(args.queries, args.seed)
    best: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for ids, vectors in chunks(args.n, args.seed):
        for name, (low, high) in {"none": (0, 99), **FILTERS}.items():
            keep = (ids % 100 >= low) & (ids % 100 <= high)
            flat = faiss.IndexFlatIP(DIM)
            flat.add(vectors[keep])
            distances, positions = flat.search(query, K)
            found = ids[keep][positions]
            if name in best:
                distances = np.hstack([best[name][0], distances])
                found = np.hstack([best[name][1], found])
            order = np.argsort(-distances, axis=1, kind="stable")[:, :K]
            best[name] = (np.take_along_axis(distances, order, 1), np.take_along_axis(found, order, 1))
    np.savez(Path(args.dir) / "truth.npz", queries=query, **{name: found for name, (_, found) in best.items()})
    return {}


def serve(args: argparse.Namespace) -> dict[str, Any]:
    from metamedia.vectors import CompactCollection  # deferred: bench process start stays light

    before = memory()
    started = time.perf_counter()
    collection = CompactCollection.open(args.dir)
    open_s = time.perf_counter() - started
    after_open = memory()
    data = np.load(Path(args.dir) / "truth.npz")
    results: dict[str, Any] = {"open_s": round(open_s, 2), "memory_before_open": before, "memory_after_open": after_open}
    for name, truth_ids in [("none", data["none"])] + [(n, data[n]) for n in FILTERS]:
        spec = None if name == "none" else {"bucket": FILTERS[name]}
        times, hits = [], 0
        short = 0
        for query, expected in zip(data["queries"], truth_ids, strict=True):
            start = time.perf_counter()
            found = collection.search(query, K, filter=spec)[0]
            times.append(time.perf_counter() - start)
            hits += len({hit.id for hit in found} & set(expected.tolist()))
            short += len(found) < K
        millis = np.array(times) * 1000
        results[name] = {
            "recall_at_10": round(hits / truth_ids.size, 4),
            "p50_ms": round(float(np.percentile(millis, 50)), 2),
            "p99_ms": round(float(np.percentile(millis, 99)), 2),
            "short_answers": short,
        }
        results[f"memory_after_{name}"] = memory()
    results["memory_steady"] = memory()
    return results


def run_phase(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--dir", args.dir, "--n", str(args.n)]
    command += ["--queries", str(args.queries), "--seed", str(args.seed), "--nlist", str(args.nlist)]
    command += ["--pq-m", str(args.pq_m), "--train-size", str(args.train_size)]
    env = dict(os.environ)
    if phase == "serve":  # one query at a time on one thread, as each worker thread of a server would
        env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--pq-m", type=int, default=48)
    parser.add_argument("--train-size", type=int, default=65_536)
    parser.add_argument("--phase", choices=("build", "truth", "serve"))
    parser.add_argument("--dir", help="collection folder (default: a temporary one)")
    parser.add_argument("--out", help="result JSON (default bench/results/million-<time>.json)")
    args = parser.parse_args()
    if args.phase:
        result = {"build": build, "truth": truth, "serve": serve}[args.phase](args)
        print(json.dumps(result))
        return 0
    machine = describe_machine()
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="million-", dir=args.dir) as scratch:
        args.dir = str(Path(scratch) / "collection")
        print(f"building {args.n:,} x {DIM} ...", flush=True)
        built = run_phase("build", args)
        print(f"built in {built['build_s']} s, peak RSS {built['memory']['peak_rss_mb']} MB", flush=True)
        run_phase("truth", args)
        served = run_phase("serve", args)
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    peak = max(served["memory_steady"]["peak_rss_mb"], built["memory"]["peak_rss_mb"])
    result = {
        "benchmark": "million",
        "n": args.n,
        "dim": DIM,
        "index": {"kind": "ivf-pq 4-bit fast scan", "nlist": args.nlist, "pq_m": args.pq_m, "rerank_file": "float16"},
        "machine": machine,
        "build": built,
        "serve": served,
        "goals": {
            "rss_mb_max": GOAL_MB,
            "recall_min": GOAL_RECALL,
            "peak_rss_mb_build_or_serve": peak,
            "rss_met": peak <= GOAL_MB,
            "recall_met": served["none"]["recall_at_10"] >= GOAL_RECALL,
        },
    }
    out = Path(args.out) if args.out else HERE / "results" / f"million-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("build", "serve", "goals")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
