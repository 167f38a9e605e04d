"""The HTTP load table in one run: metamedia beside its in-run anchors.

Anchors: the naive endpoint (`bench/naive_server.py`: FastAPI + sentence-transformers, one torch
thread, batch of one + faiss HNSW) over the same catalog, and a minimal endpoint inside metamedia's
own server (`bench/bench_app.py`: same middleware, same auth + rate-limit dependency). Both servers
run for the whole run; each scenario drives one of them while the other idles, and the load average
is recorded before every scenario (the machine is shared: compare ratios, not absolute numbers).

Scenarios: one client with new queries (p50 vs naive), 20 clients with new queries (throughput vs
naive), 20 clients on cached /search vs on /bench/minimal (server CPU per request), and 50 clients
on the 90/10 read/write mix (item write p50). metamedia serves with `--workers` processes behind its
port (`metamedia serve --workers N`; 2 by default, one per core here), the naive endpoint is one
process by design; server CPU counts each server's whole process tree. With more than one worker,
a last scenario restarts metamedia as one process over the same data and repeats the 20-client
new-query run, so the table shows what the workers add.

    python bench/http_bench.py [--duration 20] [--rows 1000] [--workers 2] [--catalog tmdb_5000_movies.csv]

Both servers load the first `--rows` movies of the catalog (1,000 by default: the whole TMDB 5000
file takes ~20 min to embed twice on a shared 2-core machine; 0 = all of it).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "scripts"))

from crash_trials import free_port, wait_ready  # noqa: E402

from load_test import Mix, run_processes, server_cpu_seconds  # noqa: E402
from machine import describe_machine  # noqa: E402
from metamedia.api.keys import KeyStore  # noqa: E402
from metamedia.settings import Settings  # noqa: E402
from metamedia.store.factory import open_store  # noqa: E402
from paths import repo_relative, shared_file  # noqa: E402


def start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A server in a session of its own. Linux with autogroup scheduling (the default on desktop and
    many server kernels) shares the CPU fairly between sessions, then between the threads inside
    one: a server in the bench's own session would share its slice with the load clients (4 busy
    processes), so the server with fewer runnable threads would lose CPU to its own clients — not
    what a deployment sees, where clients are other machines. Both servers are started alike."""
    return subprocess.Popen(
        cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True
    )


CLIENT_PROCESSES = 4


def autogroup_enabled() -> bool | None:
    """Whether the kernel shares CPU between sessions first (None: not Linux, or not known)."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return None


def first_rows(catalog: Path, rows: int, folder: Path) -> Path:
    """The catalog's header and first `rows` records (CSV-aware: overviews may hold newlines)."""
    if rows <= 0:
        return catalog
    csv.field_size_limit(10**8)
    out = folder / f"{catalog.stem}-first{rows}.csv"
    with catalog.open(newline="", encoding="utf-8") as src, out.open("w", newline="", encoding="utf-8") as dst:
        reader, writer = csv.reader(src), csv.writer(dst)
        for n, record in enumerate(reader):
            if n > rows:
                break
            writer.writerow(record)
    return out


def wait_workers(url: str, key: str, workers: int, timeout: float = 300) -> list[int]:
    """Wait until `workers` distinct processes answered /ready 200 (new connection each time)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(seen)} of {workers} workers ready after {timeout} s")
        answer = httpx.get(f"{url}/ready", headers={"X-API-Key": key}, timeout=30)
        if answer.status_code == 200:
            seen.add(answer.json().get("process", {}).get("pid", 0))
        time.sleep(0.05)
    return sorted(seen)


def scenario(
    name: str, url: str, pid: int, keys: list[str], clients: int, duration: float, mix: Mix
) -> dict[str, Any]:
    load = os.getloadavg()[0]
    cpu0 = server_cpu_seconds(pid)
    # Clients in up to CLIENT_PROCESSES processes: one asyncio process tops out near the cheap
    # endpoints' rate on a busy machine, and would measure itself instead of the server.
    result = run_processes(url, keys[:clients], duration, mix, CLIENT_PROCESSES)
    cpu = server_cpu_seconds(pid) - cpu0
    answered = sum(v["n"] for v in result["latency"].values())  # type: ignore[attr-defined]
    result.update(
        scenario=name,
        clients=clients,
        duration_s=duration,
        load_average_before=round(load, 2),
        server_cpu_ms_per_request=round(1000 * cpu / max(answered, 1), 3),
    )
    lat = result["latency"]
    print(f"{name}: load {load:.1f}, {json.dumps(lat)}, errors {result['errors']}, "
          f"server CPU {result['server_cpu_ms_per_request']} ms/request", flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per scenario")
    ap.add_argument("--catalog", type=Path, default=None, help="CSV (default: ../shared/data TMDB 5000)")
    ap.add_argument("--rows", type=int, default=1000, help="first N movies of the catalog (0 = all)")
    ap.add_argument("--workers", type=int, default=2, help="metamedia server processes (0 = one per core)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.catalog is None:
        args.catalog = shared_file("tmdb-5000/tmdb_5000_movies.csv")
    machine = describe_machine()
    machine["sched_autogroup"] = autogroup_enabled()
    d = args.duration
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="http-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        catalog = first_rows(args.catalog, args.rows, Path(tmp))
        store = open_store(Settings(data_dir=data_dir).resolved_database_url)
        keys = [KeyStore(store.engine).create(["admin"], name=f"load-{i}")[1] for i in range(50)]
        store.close()
        env = {
            **os.environ,
            "METAMEDIA_DATA_DIR": str(data_dir),
            "METAMEDIA_RATE_LIMIT": "100000/second",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        workers = Settings(workers=args.workers).resolved_workers
        ours_port, naive_port = free_port(), free_port()
        ours_cmd = [sys.executable, "bench/bench_app.py", str(ours_port), str(catalog)]
        ours_env = {**env, "METAMEDIA_WORKERS": str(workers)}
        ours = start(ours_cmd, Path(tmp) / "ours.log", ours_env)
        ours_url, naive_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{naive_port}"
        naive = start([sys.executable, "bench/naive_server.py", str(catalog), str(naive_port)], Path(tmp) / "naive.log", env)
        try:  # both load (and embed the catalog) at once; nothing is measured before both are ready
            wait_ready(ours_url, ours, timeout=1800)
            wait_ready(naive_url, naive, timeout=1800)
            results["workers"] = workers
            results["worker_pids"] = wait_workers(ours_url, keys[0], workers)
            runtime = httpx.get(f"{ours_url}/stats", headers={"X-API-Key": keys[0]}, timeout=30).json()
            results["embedding_runtime"] = runtime.get("embedding_runtime")
            new = Mix(0.0, 0.0, unique=True)
            for clients in (1, 20):
                for label, url, proc in (("metamedia", ours_url, ours), ("naive", naive_url, naive)):
                    name = f"{label} {clients} client(s), new queries"
                    results[name] = scenario(name, url, proc.pid, keys, clients, d, new)
            results["metamedia 20 clients, cached /search"] = scenario(
                "metamedia 20 clients, cached /search", ours_url, ours.pid, keys, 20, d, Mix(0.0, 0.0)
            )
            results["metamedia 20 clients, /bench/minimal"] = scenario(
                "metamedia 20 clients, /bench/minimal", ours_url, ours.pid, keys, 20, d,
                Mix(0.0, 0.0, path="/bench/minimal"),
            )
            results["metamedia 50 clients, 90/10 mix with writes"] = scenario(
                "metamedia 50 clients, 90/10 mix with writes", ours_url, ours.pid, keys, 50, d, Mix(0.10)
            )
            if workers > 1:  # the same server as one process, over the data it already loaded
                ours.terminate()
                ours.wait(60)
                ours = start(ours_cmd, Path(tmp) / "ours-1.log", {**env, "METAMEDIA_WORKERS": "1"})
                wait_ready(ours_url, ours, timeout=600)
                name = "metamedia 1 process, 20 clients, new queries"
                results[name] = scenario(name, ours_url, ours.pid, keys, 20, d, new)
                for name, mix in (("cached /search", Mix(0.0, 0.0)), ("/bench/minimal", Mix(0.0, 0.0, path="/bench/minimal"))):
                    label = f"metamedia 1 process, 20 clients, {name}"
                    results[label] = scenario(label, ours_url, ours.pid, keys, 20, d, mix)
        finally:
            for proc in (ours, naive):
                if proc is not None:
                    proc.terminate()
                    proc.wait(30)

    def lat(name: str, kind: str = "search") -> dict[str, float]:
        return results[name]["latency"].get(kind, {"p50_ms": float("nan"), "rps": 0.0})

    one_ours, one_naive = lat("metamedia 1 client(s), new queries"), lat("naive 1 client(s), new queries")
    many_ours, many_naive = lat("metamedia 20 client(s), new queries"), lat("naive 20 client(s), new queries")
    cached = results["metamedia 20 clients, cached /search"]["server_cpu_ms_per_request"]
    minimal = results["metamedia 20 clients, /bench/minimal"]["server_cpu_ms_per_request"]
    write = lat("metamedia 50 clients, 90/10 mix with writes", "write")
    single = results.get("metamedia 1 process, 20 clients, new queries")
    goals = {
        "one-client /search p50 vs naive (goal <= 1.0x)": one_ours["p50_ms"] / one_naive["p50_ms"],
        "20-client new-query throughput vs naive (goal >= 2.0x)": many_ours["rps"] / max(many_naive["rps"], 1e-9),
        "cached /search server CPU ms/request (goal <= 0.8)": cached,
        "minimal endpoint server CPU ms/request (same server)": minimal,
        "cached /search CPU vs minimal endpoint": cached / max(minimal, 1e-9),
        "50-client mix item write p50 ms (goal <= 300)": write["p50_ms"],
    }
    if single is not None:
        one_process = single["latency"].get("search", {"rps": 0.0})
        goals["20-client new-query throughput, 1 process vs naive"] = one_process["rps"] / max(many_naive["rps"], 1e-9)
        goals["20-client new-query throughput, workers vs 1 process"] = many_ours["rps"] / max(one_process["rps"], 1e-9)
        single_cached = results["metamedia 1 process, 20 clients, cached /search"]["server_cpu_ms_per_request"]
        single_minimal = results["metamedia 1 process, 20 clients, /bench/minimal"]["server_cpu_ms_per_request"]
        goals["cached /search server CPU ms/request, 1 process (goal <= 0.8)"] = single_cached
        goals["cached /search CPU vs minimal endpoint, 1 process"] = single_cached / max(single_minimal, 1e-9)
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = args.out or ROOT / "bench" / "results" / f"http-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"machine": machine, "goals": goals, "scenarios": results, "catalog": args.catalog.name, "rows": args.rows, "workers": results.get("workers")}, indent=2) + "\n")
    for key, value in goals.items():
        print(f"{key}: {value:.3f}")
    print("wrote", repo_relative(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
