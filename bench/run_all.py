"""`make bench`: every benchmark in one run, results under bench/results/, summary in bench/README.md.

Each benchmark runs as its own process (clean RSS, no shared caches) and compares against its
peers inside that process. Set BENCH_QUICK=1 for smaller sizes (a smoke run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
QUICK = os.environ.get("BENCH_QUICK") == "1"
ENGINE_DIR = ROOT / "var" / "bench-engine"

BENCHES: list[tuple[str, list[str]]] = [
    (
        "query embedding: torch vs ONNX Runtime",
        ["bench/embed_bench.py", "--queries", "50" if QUICK else "200", "--rounds", "3" if QUICK else "5"],
    ),
    (
        "engine (ingest, embedding, search, HTTP)",
        ["bench/engine_bench.py", "--queries", "100" if QUICK else "300", "--data-dir", str(ENGINE_DIR)],
    ),
    (
        "vector store vs raw faiss / hnswlib / usearch / chromadb / lancedb",
        ["bench/vectors_bench.py", "--sizes", "20000" if QUICK else "100000"],
    ),
    (
        "recommendations",
        ["bench/recommend_bench.py", "--data-dir", str(ENGINE_DIR), "--out", "bench/results/recommend.json"],
    ),
    (
        "vector store reopen and disk per vector vs raw faiss",
        ["bench/reopen_bench.py", "--n", "20000" if QUICK else "50000"],
    ),
    (
        "1M x 384 in <= 500 MB: compact collection (IVF-PQ + float16 re-rank file)",
        ["bench/million_bench.py", "--n", "100000" if QUICK else "1000000", "--dir", "var"],
    ),
    ("agent memory", ["bench/memory_bench.py", "--out", "bench/results/memory.json"]),
    (
        "rate-limit check: memory vs the SQLite file shared by server processes",
        ["bench/ratelimit_bench.py", "--hits", "5000" if QUICK else "20000"],
    ),
    (
        "freshness across server processes: beacon check and catch-up cost",
        ["bench/freshness_bench.py", "--n", "5000" if QUICK else "20000"],
    ),
    (
        "HTTP table vs naive endpoint and minimal endpoint",
        [
            "bench/http_bench.py",
            "--duration",
            "10" if QUICK else "20",
        ],
    ),
    (
        "search quality (bm25, dense, rrf, metamedia) and /search latency before vs after",
        ["bench/search_quality.py", "--latency-queries", "60" if QUICK else "120"],
    ),
    (
        "HTTP load (50 clients, 90% reads)",
        [
            "bench/load_test.py",
            "--clients",
            "50",
            "--duration",
            "20" if QUICK else "60",
        ],
    ),
]
BENCHES.append(
    (
        "catalog embedding: local vs ingest --ray on 1 and 2 local Ray nodes, per-node cost",
        ["bench/ray_ingest_bench.py", "--items", "60" if QUICK else "120"],
    )
)
# Starts its own PostgreSQL (pgserver) unless METAMEDIA_BENCH_PG_URL is set; BENCH_SKIP_PG=1 skips it.
if (ROOT / "bench" / "pg_bench.py").exists() and os.environ.get("BENCH_SKIP_PG") != "1":
    BENCHES.append(
        (
            "metamedia on PostgreSQL vs raw pgvector vs embedded",
            ["bench/pg_bench.py", "--n", "20000" if QUICK else "100000"],
        )
    )
# A local 4-node Ray cluster with its own PostgreSQL; BENCH_SKIP_RAY=1 skips it.
if os.environ.get("BENCH_SKIP_RAY") != "1":
    BENCHES.append(
        (
            "Ray scale-out: 1 vs 2 vs 3 replicas per index shard",
            ["bench/ray_scaleout.py", "--duration", "6" if QUICK else "12"],
        )
    )


def main() -> int:
    failures = []
    for title, cmd in BENCHES:
        print(f"\n=== {title}: {' '.join(cmd)}", flush=True)
        started = time.time()
        code = subprocess.call([PY, *cmd], cwd=ROOT)
        print(f"=== {title}: exit {code} after {time.time() - started:.0f} s", flush=True)
        if code != 0:
            failures.append(title)
    if failures:
        print("failed:", ", ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
