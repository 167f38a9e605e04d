"""Start time and memory of `metamedia serve --workers N` on the demo catalog, for the default.

    python bench/workers_memory.py [--workers 1 2] [--requests 200]

Loads the bundled demo catalog (what `make run` serves) once into a temporary data folder (not
timed: the demo catalog, its MovieLens community and the first recommender fit), stops, then for
each worker count starts the server again on a fresh copy of that loaded folder and records:
seconds from the start to `/ready` 200 from every worker (each worker answers with its pid), the
resident memory of the whole process tree (supervisor + workers) once ready, then after
`--requests` `/users/<id>/recommendations` calls for a few demo users (each worker fits its own
recommenders: the log's `recommenders refitted in X s` lines), and the peak (sum of each process's
VmHWM, and the highest tree sum sampled). Writes bench/results/workers-memory-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_start import free_port  # noqa: E402
from machine import describe_machine  # noqa: E402
from paths import REPO, repo_relative  # noqa: E402

DEMO = REPO / "data" / "demo-catalog.jsonl.gz"
USERS = ("ml-1", "ml-2", "ml-3", "ml-4", "ml-5")
MIB = 1024 * 1024


def start(data_dir: Path, workers: int, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "METAMEDIA_DATA_DIR": str(data_dir), "METAMEDIA_AUTH_DISABLED": "1"}
    env["METAMEDIA_LOG_JSON"] = "0"
    cmd = [sys.executable, "-m", "metamedia.cli", "serve", "--port", str(port), "--demo", str(DEMO),
           "--workers", str(workers)]  # fmt: skip
    with log.open("ab") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(180)


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def rss_mib(pid: int) -> dict[str, Any]:
    per = {}
    for p in tree(pid):
        try:
            per[p.pid] = p.memory_info().rss / MIB
        except psutil.NoSuchProcess:
            pass
    return {"sum": round(sum(per.values()), 1), "per_process": [round(v, 1) for v in per.values()]}


def peak_mib(pid: int) -> float:
    """Sum of each live process's own high-water mark (VmHWM)."""
    total = 0.0
    for p in tree(pid):
        try:
            text = Path(f"/proc/{p.pid}/status").read_text()
        except FileNotFoundError:
            continue
        found = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
        total += int(found.group(1)) / 1024 if found else 0.0
    return round(total, 1)


def ready_everywhere(
    proc: subprocess.Popen[bytes], url: str, workers: int, started: float, log: Path
) -> dict[int, float]:
    """{pid: seconds from the start to its first /ready 200}, over new connections."""
    seen: dict[int, float] = {}
    while len(seen) < workers:
        if proc.poll() is not None or time.monotonic() - started > 600:
            raise SystemExit(f"server exited or never ready:\n{log.read_text()[-3000:]}")
        try:
            with httpx.Client(timeout=10) as client:
                answer = client.get(url + "/ready")
            if answer.status_code == 200:
                seen.setdefault(answer.json()["process"]["pid"], round(time.monotonic() - started, 2))
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return seen


def first_load(folder: Path) -> None:
    """The demo catalog, its community and the first fit, into `folder` (not measured)."""
    log = folder.parent / "first-load.log"
    proc, url = start(folder, 1, log)
    try:
        ready_everywhere(proc, url, 1, time.monotonic(), log)
        deadline = time.monotonic() + 900
        while "demo community ready" not in log.read_text():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"demo community not ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    finally:
        stop(proc)


def measure(loaded: Path, workers: int, requests: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"workers-{workers}-") as tmp:
        data_dir, log = Path(tmp) / "var", Path(tmp) / "server.log"
        shutil.copytree(loaded, data_dir)
        started = time.monotonic()
        proc, url = start(data_dir, workers, log)
        try:
            ready = ready_everywhere(proc, url, workers, started, log)
            time.sleep(2)  # settle: a just-ready worker may still be finishing its warm-up
            after_ready = rss_mib(proc.pid)
            highest = after_ready["sum"]
            sampling = threading.Event()

            def sample() -> None:
                nonlocal highest
                while not sampling.wait(0.2):
                    highest = max(highest, rss_mib(proc.pid)["sum"])

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            statuses: dict[int, int] = {}
            began = time.monotonic()
            for i in range(requests):
                with httpx.Client(timeout=60) as client:  # a new connection: any worker may take it
                    status = client.get(
                        f"{url}/users/{USERS[i % len(USERS)]}/recommendations?k=10"
                    ).status_code
                statuses[status] = statuses.get(status, 0) + 1
            requests_s = round(time.monotonic() - began, 1)
            deadline = time.monotonic() + 120  # each worker's background fit
            while len(re.findall(r"^recommenders refitted in", log.read_text(), re.M)) < workers:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            time.sleep(1)
            sampling.set()
            sampler.join()
            after_requests = rss_mib(proc.pid)
            peak = peak_mib(proc.pid)
        finally:
            stop(proc)
        fits = [float(s) for s in re.findall(r"^recommenders refitted in ([\d.]+) s", log.read_text(), re.M)]
    return {
        "workers": workers,
        "seconds_to_ready_per_worker": sorted(ready.values()),
        "seconds_to_ready_all": max(ready.values()),
        "rss_mib_after_ready": after_ready,
        "rss_mib_after_requests": after_requests,
        "rss_mib_highest_sampled_sum": round(highest, 1),
        "peak_mib_sum_of_vmhwm": peak,
        "fit_seconds_per_worker": fits,
        "requests": requests,
        "requests_seconds": requests_s,
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="workers-loaded-") as tmp:
        loaded = Path(tmp) / "var"
        began = time.monotonic()
        first_load(loaded)
        print(f"demo loaded in {time.monotonic() - began:.0f} s", flush=True)
        runs = []
        for workers in args.workers:
            runs.append(measure(loaded, workers, args.requests))
            print(json.dumps(runs[-1]), flush=True)
    result = {
        "machine": describe_machine(),
        "catalog": repo_relative(DEMO),
        "users": list(USERS),
        "load_avg_at_end": os.getloadavg(),
        "runs": runs,
    }
    out = args.out / f"workers-memory-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("->", repo_relative(out))


if __name__ == "__main__":
    main()
