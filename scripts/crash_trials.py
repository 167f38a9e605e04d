"""Crash-safety trials: kill -9 the server while clients write, restart, check every acknowledged write.

Each trial: start `metamedia serve` on a fresh data folder, run writers (admin item create/update,
JSON Lines uploads, user interactions with idempotency keys), SIGKILL the server at a random
moment, restart it, then check that every acknowledged write is present and that GET /admin/verify
reports the index in agreement with the store.

The catalog is embedded on every trial's first start, so give a small one (the first 80 rows of
TMDB 5000, about 30 s per trial); the whole file takes minutes to embed and outlasts the readiness
wait (120 s):

    head -81 ../shared/data/tmdb-5000/tmdb_5000_movies.csv > /tmp/slice80.csv   # header + 80 rows
    python scripts/crash_trials.py --trials 20 --catalog /tmp/slice80.csv
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from metamedia.api.keys import KeyStore
from metamedia.settings import Settings
from metamedia.store.factory import open_store


@dataclass
class Acked:
    """Writes the server acknowledged (2xx), and writes in flight when it died."""

    titles: dict[int, set[str]] = field(default_factory=dict)  # item id -> acceptable titles
    created: dict[int, str] = field(default_factory=dict)
    ingested_tmdb_ids: list[int] = field(default_factory=list)
    interactions: dict[str, int] = field(default_factory=dict)  # user -> acknowledged interactions
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class TrialResult:
    ok: bool
    acked_items: int
    acked_ingests: int
    acked_interactions: int
    problems: list[str]
    secret_in_logs: bool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, catalog: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "METAMEDIA_RATE_LIMIT": "100000/second",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    exe = Path(sys.executable).with_name("metamedia")
    cmd = [str(exe), "--data-dir", str(data_dir), "serve", "--port", str(port), "--demo", str(catalog)]
    return subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server not ready in time")


def item_writer(client: httpx.Client, acked: Acked, stop: threading.Event, rng: random.Random) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        mine = list(acked.created)
        try:
            if mine and rng.random() < 0.4:
                item_id = rng.choice(mine)
                title = f"Crash Update {n} {rng.random():.6f}"
                with acked.lock:
                    acked.titles[item_id].add(title)  # in flight: either outcome is acceptable
                r = client.put(f"/admin/items/{item_id}", json={"title": title})
                if r.status_code == 200:
                    with acked.lock:
                        acked.titles[item_id] = {title}
            else:
                title = f"Crash Create {n} {rng.random():.6f}"
                r = client.post(
                    "/admin/items", json={"title": title, "overview": "written during a crash trial"}
                )
                if r.status_code == 201:
                    with acked.lock:
                        acked.created[r.json()["id"]] = title
                        acked.titles[r.json()["id"]] = {title}
        except httpx.HTTPError:
            return


def ingest_writer(client: httpx.Client, acked: Acked, stop: threading.Event, rng: random.Random) -> None:
    base = 900_000_000 + rng.randrange(1_000_000) * 10
    n = 0
    while not stop.is_set():
        ids = [base + n + i for i in range(3)]
        n += 3
        body = "".join(json.dumps({"title": f"Uploaded {i}", "tmdb_id": i}) + "\n" for i in ids).encode()
        try:
            r = client.post("/admin/ingest/upload", params={"name": f"batch{n}.jsonl"}, content=body)
        except httpx.HTTPError:
            return
        if r.status_code == 200:
            with acked.lock:
                acked.ingested_tmdb_ids.extend(ids)


def interaction_writer(client: httpx.Client, acked: Acked, stop: threading.Event, rng: random.Random) -> None:
    user = f"crash-{rng.randrange(1_000_000)}"
    kinds = ["view", "click", "like", "skip", "add_to_list"]
    n = 0
    while not stop.is_set():
        n += 1
        body = {"item_id": 1, "kind": rng.choice(kinds), "idempotency_key": f"{user}-{n}"}
        try:
            r = client.post(f"/users/{user}/interactions", json=body)
        except httpx.HTTPError:
            return
        if r.status_code == 201:
            with acked.lock:
                acked.interactions[user] = acked.interactions.get(user, 0) + 1


WRITERS: list[Callable[[httpx.Client, Acked, threading.Event, random.Random], None]] = [
    item_writer,
    ingest_writer,
    interaction_writer,
]


READY_TIMEOUT_S = 120.0


def run_trial(
    workdir: Path, catalog: Path, seed: int, kill_after: tuple[float, float] = (1.0, 4.0)
) -> TrialResult:
    rng = random.Random(seed)
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(Settings(data_dir=data_dir).resolved_database_url)
    _key, admin_key = KeyStore(store.engine).create(["admin"], name="crash-trial")
    store.close()
    port = free_port()
    url, log = f"http://127.0.0.1:{port}", workdir / "server.log"
    headers = {"Authorization": f"Bearer {admin_key}"}
    proc = start_server(data_dir, catalog, port, log)
    acked = Acked()
    try:
        wait_ready(url, proc, READY_TIMEOUT_S)
        stop = threading.Event()
        clients = [httpx.Client(base_url=url, headers=headers, timeout=30) for _ in WRITERS]
        threads = [
            threading.Thread(target=w, args=(c, acked, stop, random.Random(rng.random())))
            for w, c in zip(WRITERS, clients, strict=True)
        ]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(*kill_after))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(30)
        for c in clients:
            c.close()
        proc = start_server(data_dir, catalog, port, log)
        wait_ready(url, proc, READY_TIMEOUT_S)
        problems = check(url, headers, data_dir, acked)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(20)
    secret = admin_key.split("_", 2)[2]
    leaked = secret in log.read_text(errors="replace")
    return TrialResult(
        not problems and not leaked,
        len(acked.created),
        len(acked.ingested_tmdb_ids),
        sum(acked.interactions.values()),
        problems,
        leaked,
    )


def check(url: str, headers: dict[str, str], data_dir: Path, acked: Acked) -> list[str]:
    problems: list[str] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for item_id, titles in acked.titles.items():
            r = client.get(f"/items/{item_id}")
            if r.status_code != 200 or r.json()["title"] not in titles:
                problems.append(f"item {item_id}: {r.status_code} {r.text[:100]} not in {sorted(titles)[:3]}")
        for user, count in acked.interactions.items():
            r = client.get(f"/users/{user}/profile")
            stored = r.json().get("interactions", 0) if r.status_code == 200 else 0
            if stored < count:
                problems.append(f"user {user}: {count} interactions acknowledged, {stored} stored")
        report = client.get("/admin/verify").json()
        if not report.get("ok"):
            problems.append(f"index disagrees with store: {report}")
    store = open_store(Settings(data_dir=data_dir).resolved_database_url)
    try:
        found = store.find_ids("tmdb_id", acked.ingested_tmdb_ids)
    finally:
        store.close()
    missing = sorted(set(acked.ingested_tmdb_ids) - set(found))
    if missing:
        problems.append(f"{len(missing)} acknowledged ingested items missing, e.g. {missing[:5]}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--catalog", type=Path, required=True, help="Catalog loaded at first start (small is faster)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ready-timeout", type=float, default=120, help="seconds a (re)start may take (raise on a busy machine)"
    )
    args = parser.parse_args()
    global READY_TIMEOUT_S
    READY_TIMEOUT_S = args.ready_timeout
    failures = 0
    for trial in range(args.trials):
        with tempfile.TemporaryDirectory(prefix="crash-") as tmp:
            result = run_trial(Path(tmp), args.catalog, args.seed + trial)
        failures += not result.ok
        print(json.dumps({"trial": trial + 1, **result.__dict__}), flush=True)
    print(f"{args.trials - failures}/{args.trials} trials passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
