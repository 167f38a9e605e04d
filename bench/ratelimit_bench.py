"""Cost of one rate-limit check (`RateLimiter.hit`, every request pays it): memory vs the shared SQLite
file, in one run, one process and two processes contending for the same file.

Every request of a key counts against each window of the spec (default: the server's own
`100/second;3000/minute` shape, its amounts raised so a bench key is never refused, which would
measure the refusal path instead; that path is measured on its own as `refused`).

    python bench/ratelimit_bench.py [--hits 20000] [--rounds 3]

Scenarios (each in fresh processes, interleaved over rounds; the median round is reported):
  memory       one process, the library's memory storage (what one server process uses)
  sqlite       one process, `metamedia-sqlite://` (what `serve --workers N` uses without Redis)
  sqlite-2p    two processes at once on one file, one key each (separate rows, one write lock)
  sqlite-2p-1k two processes at once on one file, the same key (the worst case: one row set)
  refused      one process, SQLite, a key whose 100/second window is full (429 path: acquire + window)
  refused-3000 the same with a full 3000/minute window (the refusal path must not walk 3,000 rows)
The goal: a SQLite hit well under 0.1 ms of CPU, so the cached `/search` stays <= 0.8 ms per request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from machine import describe_machine  # noqa: E402

SPEC = "1000000/second;30000000/minute"
GOAL_CPU_US = 100.0


def child(backend: str, path: str, hits: int, key: str, spec: str, start_at: float) -> dict[str, float]:
    """Time `hits` checks in this process (imports and opening excluded)."""
    from fastapi import HTTPException

    from metamedia.api.ratelimit import RateLimiter

    limiter = RateLimiter(spec, shared_file=Path(path) if backend == "sqlite" else None)
    for _ in range(200):  # warm: pages cached, statements prepared
        try:
            limiter.hit(f"warm-{key}")
        except HTTPException:
            pass
    if spec != SPEC:  # a refusal scenario: fill the window first, so every timed hit is refused
        for _ in range(1_000_000):
            try:
                limiter.hit(key)
            except HTTPException:
                break
    time.sleep(max(0.0, start_at - time.time()))
    refused = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(hits):
        try:
            limiter.hit(key)
        except HTTPException:
            refused += 1
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall_us": wall / hits * 1e6, "cpu_us": cpu / hits * 1e6, "refused": refused}


def run(scenario: str, folder: Path, hits: int) -> dict[str, Any]:
    """One round of `scenario` in fresh processes; per-hit means (averaged over its processes)."""
    backend = "memory" if scenario == "memory" else "sqlite"
    path = folder / f"{scenario}-{time.time_ns()}.sqlite3"
    procs_keys = {
        "memory": ["a"],
        "sqlite": ["a"],
        "sqlite-2p": ["a", "b"],
        "sqlite-2p-1k": ["a", "a"],
        "refused": ["a"],
        "refused-3000": ["a"],
    }[scenario]
    spec = {"refused": "100/second", "refused-3000": "3000/minute"}.get(scenario, SPEC)
    start_at = time.time() + 4.0  # every interpreter imported and warmed by then, so they contend
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", backend, str(path), str(hits), key, spec, str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for key in procs_keys
    ]
    outs = [json.loads(proc.communicate(timeout=600)[0]) for proc in procs]
    return {
        "processes": len(outs),
        "wall_us": statistics.mean(o["wall_us"] for o in outs),
        "cpu_us": statistics.mean(o["cpu_us"] for o in outs),
        "refused": sum(int(o["refused"]) for o in outs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hits", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=6, metavar=("BACKEND", "PATH", "HITS", "KEY", "SPEC", "START"))
    args = parser.parse_args()
    if args.child:
        backend, path, hits, key, spec, start = args.child
        print(json.dumps(child(backend, path, int(hits), key, spec, float(start))))
        return 0
    scenarios = ["memory", "sqlite", "sqlite-2p", "sqlite-2p-1k", "refused", "refused-3000"]
    machine = describe_machine()
    rounds: dict[str, list[dict[str, Any]]] = {s: [] for s in scenarios}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for scenario in scenarios:
                rounds[scenario].append(run(scenario, Path(tmp), args.hits))
    results: dict[str, Any] = {}
    for scenario, measured in rounds.items():
        median = sorted(measured, key=lambda r: r["cpu_us"])[len(measured) // 2]
        results[scenario] = {**median, "rounds_cpu_us": [round(r["cpu_us"], 2) for r in measured]}
    memory_cpu = results["memory"]["cpu_us"]
    for scenario in scenarios:
        results[scenario]["cpu_vs_memory"] = round(results[scenario]["cpu_us"] / memory_cpu, 2)
    worst = max(results[s]["cpu_us"] for s in ("sqlite", "sqlite-2p", "sqlite-2p-1k"))
    out = {
        "bench": "ratelimit",
        "machine": machine,
        "spec": SPEC,
        "hits_per_process": args.hits,
        "rounds": args.rounds,
        "results": results,
        "goal": {"sqlite_cpu_us_per_hit_below": GOAL_CPU_US, "worst_sqlite_cpu_us": round(worst, 2)},
        "goal_met": worst < GOAL_CPU_US,
    }
    dest = ROOT / "bench" / "results" / f"ratelimit-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.json"
    dest.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"{'scenario':<14}{'procs':>6}{'cpu µs/hit':>12}{'wall µs/hit':>13}{'× memory':>10}{'refused':>9}")
    for scenario in scenarios:
        r = results[scenario]
        print(
            f"{scenario:<14}{r['processes']:>6}{r['cpu_us']:>12.1f}{r['wall_us']:>13.1f}"
            f"{r['cpu_vs_memory']:>10.2f}{r['refused']:>9}"
        )
    print(
        f"goal: SQLite hit < {GOAL_CPU_US:.0f} µs CPU: {'met' if out['goal_met'] else 'NOT met'} ({worst:.1f})"
    )
    print(f"wrote {dest.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
