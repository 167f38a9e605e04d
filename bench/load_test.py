"""Load test: N concurrent asyncio clients on loopback, 90% reads / 10% writes, for D seconds.

Starts `metamedia serve` on a temp copy of a catalog (or uses --url with --key), creates one admin
key per client (so per-key rate limits apply as in production), and records p50/p99 per request
kind plus the error count into bench/results/load_<time>.json. Zero errors is the bar.

    python bench/load_test.py --clients 50 --duration 60 --catalog ../shared/data/tmdb-5000/tmdb_5000_movies.csv
    python bench/load_test.py --clients 20 --duration 60 --search-only   # the /search latency goal
    python bench/load_test.py --clients 20 --duration 60 --search-only --unique   # every query new
    python bench/load_test.py --clients 20 --duration 60 --search-only --unique --rate 2  # paced users

Closed loop by default (each client sends its next request as soon as the previous one answers);
`--rate R` paces every client at R requests/s (open loop), as users with think time would.
`--unique` makes every search query a new sentence (no result or embedding cache hit).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import os
import random
import shutil
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from crash_trials import free_port, start_server, wait_ready  # noqa: E402

from machine import describe_machine  # noqa: E402
from metamedia.api.keys import KeyStore  # noqa: E402
from metamedia.settings import Settings  # noqa: E402
from metamedia.store.factory import open_store  # noqa: E402
from paths import shared_file  # noqa: E402

QUERIES = [
    "dark 90s thrillers",
    "funny space movies",
    "romantic comedy in paris",
    "heist gone wrong",
    "animated family adventure",
    "war drama",
    "superhero",
    "slow burn horror",
    "courtroom",
    "road trip",
]


SUBJECTS = [
    "detective",
    "astronaut",
    "family",
    "soldier",
    "chef",
    "robot",
    "teacher",
    "thief",
    "ghost",
    "band",
]
PLACES = [
    "in paris",
    "in space",
    "on a farm",
    "in new york",
    "at sea",
    "in the desert",
    "in a small town",
    "in tokyo",
]
TONES = ["funny", "dark", "slow", "tense", "heartwarming", "violent", "quirky", "epic"]


def unique_query(rng: random.Random, n: int) -> str:
    return f"{rng.choice(TONES)} story about a {rng.choice(SUBJECTS)} {rng.choice(PLACES)} number {n}"


@dataclass
class Mix:
    write_share: float
    similar_share: float = 0.2
    unique: bool = False
    rate: float = 0.0  # requests/s per client; 0 = closed loop
    path: str = "/search"  # what a "search" request asks for (bench/http_bench.py also asks /bench/minimal)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process for every client: each httpx client would otherwise load the CA
    store itself (tens of ms of CPU each, inside the timed window; the URLs here are plain HTTP)."""
    return ssl.create_default_context()


async def client_loop(
    url: str,
    key: str,
    until: float,
    mix: Mix,
    seed: int,
    samples: dict[str, list[float]],
    errors: list[str],
) -> None:
    rng = random.Random(seed)
    created: list[int] = []
    sent = 0
    next_at = time.perf_counter() + (rng.random() / mix.rate if mix.rate else 0.0)
    async with httpx.AsyncClient(
        base_url=url, headers={"X-API-Key": key}, timeout=30, verify=_tls()
    ) as client:
        while time.perf_counter() < until:
            if mix.rate:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += 1.0 / mix.rate
            sent += 1
            if rng.random() < mix.write_share:
                kind = "write"
                if created and rng.random() < 0.5:
                    request = client.put(
                        f"/admin/items/{rng.choice(created)}", json={"title": f"Load {rng.random()}"}
                    )
                else:
                    request = client.post(
                        "/admin/items", json={"title": f"Load {rng.random()}", "overview": "load"}
                    )
            elif rng.random() >= mix.similar_share:
                kind = "search"
                query = unique_query(rng, seed * 1_000_000 + sent) if mix.unique else rng.choice(QUERIES)
                request = client.get(mix.path, params={"q": query, "k": 10})
            else:
                kind = "similar"
                request = client.get(f"/items/{rng.randint(1, 200)}/similar", params={"k": 10})
            started = time.perf_counter()
            try:
                response = await request
            except httpx.HTTPError as exc:
                errors.append(f"{kind}: {type(exc).__name__}")
                continue
            samples.setdefault(kind, []).append(time.perf_counter() - started)
            if response.status_code >= 400 and not (kind == "similar" and response.status_code == 404):
                errors.append(f"{kind}: {response.status_code} {response.text[:100]}")
            elif kind == "write" and response.status_code == 201:
                created.append(response.json()["id"])


async def _client_samples(
    url: str, keys: list[str], duration: float, mix: Mix, first_seed: int
) -> tuple[dict[str, list[float]], list[str]]:
    samples: dict[str, list[float]] = {}
    errors: list[str] = []
    until = time.perf_counter() + duration
    await asyncio.gather(
        *(client_loop(url, k, until, mix, first_seed + i, samples, errors) for i, k in enumerate(keys))
    )
    return samples, errors


def _process_samples(
    args: tuple[str, list[str], float, Mix, int],
) -> tuple[dict[str, list[float]], list[str]]:
    return asyncio.run(_client_samples(*args))


def summarise(samples: dict[str, list[float]], errors: list[str], duration: float) -> dict[str, object]:
    summary: dict[str, object] = {}
    for kind, values in samples.items():
        arr = np.asarray(values) * 1000
        summary[kind] = {
            "n": len(values),
            "p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p99_ms": round(float(np.percentile(arr, 99)), 2),
            "rps": round(len(values) / duration, 1),
        }
    return {"latency": summary, "errors": len(errors), "error_examples": errors[:10]}


async def run(url: str, keys: list[str], duration: float, mix: Mix) -> dict[str, object]:
    samples, errors = await _client_samples(url, keys, duration, mix, 0)
    return summarise(samples, errors, duration)


def run_processes(url: str, keys: list[str], duration: float, mix: Mix, processes: int) -> dict[str, object]:
    """`run` with the clients spread over several processes, so one Python process's CPU (httpx costs
    ~1-2 ms per request) does not cap the load a fast server sees. Client i keeps seed i either way."""
    processes = max(1, min(processes, len(keys)))
    if processes == 1:
        return asyncio.run(run(url, keys, duration, mix))
    bounds = [round(len(keys) * p / processes) for p in range(processes + 1)]
    jobs = [(url, keys[a:b], duration, mix, a) for a, b in zip(bounds, bounds[1:], strict=False)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_process_samples, jobs)
    samples: dict[str, list[float]] = {}
    errors: list[str] = []
    for part_samples, part_errors in parts:
        for kind, values in part_samples.items():
            samples.setdefault(kind, []).extend(values)
        errors += part_errors
    return summarise(samples, errors, duration)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (None when the process is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(pid: int) -> list[int]:
    """`pid` and every live process descending from it (Linux /proc: each process's parent)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], ()))
    return tree


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of the server process and every process under it (uvicorn's
    supervisor and its workers), including children that already exited and were waited for."""
    ticks = 0
    for member in process_tree(pid):
        fields = _stat(member)
        if fields is not None:  # utime, stime, cutime, cstime
            ticks += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--write-share", type=float, default=0.10)
    parser.add_argument("--reads-only", action="store_true", help="no writes (searches and similar)")
    parser.add_argument("--search-only", action="store_true", help="only /search")
    parser.add_argument("--unique", action="store_true", help="every search query is a new sentence")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s per client; 0 = closed loop")
    parser.add_argument(
        "--catalog",
        type=Path,
        help="catalog file to ingest (default: ../shared/data/tmdb-5000/tmdb_5000_movies.csv)",
    )
    parser.add_argument(
        "--copy-data-dir",
        type=Path,
        help="start from a copy of this data dir (already ingested and indexed) instead of ingesting --catalog",
    )
    args = parser.parse_args()
    if args.catalog is None and not args.copy_data_dir:
        args.catalog = shared_file("tmdb-5000/tmdb_5000_movies.csv")
    write_share = 0.0 if args.reads_only or args.search_only else args.write_share
    mix = Mix(write_share, 0.0 if args.search_only else 0.2, args.unique, args.rate)
    with tempfile.TemporaryDirectory(prefix="load-") as tmp:
        data_dir = Path(tmp) / "data"
        if args.copy_data_dir:
            shutil.copytree(args.copy_data_dir, data_dir)
        else:
            data_dir.mkdir()
        store = open_store(Settings(data_dir=data_dir).resolved_database_url)
        key_store = KeyStore(store.engine)
        keys = [key_store.create(["admin"], name=f"load-{i}")[1] for i in range(args.clients)]
        store.close()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(data_dir, args.catalog, port, Path(tmp) / "server.log")
        try:
            wait_ready(url, proc, timeout=900)
            cpu_before, load_before = server_cpu_seconds(proc.pid), os.getloadavg()[0]
            result = asyncio.run(run(url, keys, args.duration, mix))
            cpu = server_cpu_seconds(proc.pid) - cpu_before
            answered = sum(v["n"] for v in result["latency"].values())  # type: ignore[attr-defined]
            result["server_cpu_s"] = round(cpu, 2)
            result["server_cpu_ms_per_request"] = round(1000 * cpu / max(answered, 1), 3)
            result["load_average_before"] = load_before
        finally:
            proc.terminate()
            proc.wait(30)
    result.update(
        clients=args.clients,
        duration_s=args.duration,
        write_share=write_share,
        search_only=args.search_only,
        unique_queries=args.unique,
        rate_per_client=args.rate,
        catalog=str(args.copy_data_dir) if args.copy_data_dir else args.catalog.name,
        machine=describe_machine(),
    )
    out = Path(__file__).resolve().parent / "results" / f"load_{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
