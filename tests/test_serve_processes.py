"""`metamedia serve --workers 2` for real: a write handled by one process reaches `/events` subscribers of
the other, a client resumes on either with Last-Event-ID, and `/metrics` on either reports the requests
both served, also after one of them was killed. A client reaches a chosen process by keeping the one
connection that process accepted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from metamedia.client import MetamediaClient, StreamEvent
from metamedia.engine import Engine
from metamedia.settings import Settings

from .conftest import TMDB_5000, free_port, write_csv_slice

pytestmark = pytest.mark.slow  # two server processes start: ~20-40 s on a busy 2-core machine


@dataclass(frozen=True)
class Server:
    url: str
    data: Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """`metamedia serve --workers 2` over a data directory with a small catalog."""
    root = tmp_path_factory.mktemp("processes")
    data = root / "data"
    engine = Engine(Settings(data_dir=data), embedder=embedder)
    engine.ingest([write_csv_slice(TMDB_5000, root / "slice.csv", 30)])
    engine.close()
    env = {
        **os.environ,
        "METAMEDIA_DATA_DIR": str(data),
        "METAMEDIA_AUTH_DISABLED": "1",
        "METAMEDIA_RATE_LIMIT": "",
        "METAMEDIA_LOG_JSON": "0",
        "METAMEDIA_EVENTS_HEARTBEAT_S": "0.5",
    }
    port = free_port()
    log = root / "server.log"
    cmd = [sys.executable, "-m", "metamedia.cli", "serve", "--port", str(port), "--workers", "2"]
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        pids = set()
        deadline = time.monotonic() + 180
        while len(pids) < 2:  # both workers answer /ready (a new connection goes to either)
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log.read_text(errors="replace")[-3000:])
            try:
                answer = httpx.get(f"{url}/ready", timeout=5)
                if answer.status_code == 200:
                    pids.add(answer.json()["process"]["pid"])
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield Server(url, data)
    finally:
        proc.terminate()
        proc.wait(60)


def worker_pids(url: str) -> list[int]:
    pids: set[int] = set()
    while len(pids) < 2:
        pids.add(httpx.get(f"{url}/health", timeout=5).json()["process"]["pid"])
    return sorted(pids)


def client_on(url: str, pid: int) -> MetamediaClient:
    """A client whose one keep-alive connection was accepted by the worker `pid`."""
    for _ in range(200):
        http = httpx.Client(base_url=url, timeout=20, limits=httpx.Limits(max_connections=1))
        if http.get("/health").json()["process"]["pid"] == pid:
            return MetamediaClient(http=http)
        http.close()
    raise AssertionError(f"no connection reached worker {pid}")


def listen(client: MetamediaClient, n: int, out: list[StreamEvent], **kwargs: object) -> threading.Thread:
    def run() -> None:
        with client:
            for event in client.events(timeout=20, **kwargs):  # type: ignore[arg-type]
                out.append(event)
                if len(out) == n:
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_writes_on_either_process_reach_subscribers_of_both_and_resume_on_either(server: Server) -> None:
    one, two = worker_pids(server.url)
    kinds = ["item.created", "interaction"]
    on_one: list[StreamEvent] = []
    on_two: list[StreamEvent] = []
    threads = [
        listen(client_on(server.url, one), 4, on_one, kinds=kinds),
        listen(client_on(server.url, two), 4, on_two, kinds=kinds),
    ]
    time.sleep(1.0)  # both subscriptions open before the writes
    with client_on(server.url, one) as a, client_on(server.url, two) as b:
        # Catalog writes on process two, a user's interactions on process one, alternating.
        film = b.create_item({"title": "Written On Two"})["id"]
        a.http.post("/users/ada/interactions", json={"item_id": film, "kind": "like"}).raise_for_status()
        sequel = b.create_item({"title": "Two Again"})["id"]
        a.http.post("/users/ada/interactions", json={"item_id": sequel, "kind": "like"}).raise_for_status()
    for thread in threads:
        thread.join(20)
    expected = [
        ("item.created", film),
        ("interaction", film),
        ("item.created", sequel),
        ("interaction", sequel),
    ]
    for seen in (on_one, on_two):  # each subscriber: every event, once, in one global order
        assert [(e.kind, e.data["item_id"]) for e in seen] == expected
        ids = [int(e.id or 0) for e in seen]
        assert ids == sorted(ids) and len(set(ids)) == 4
    assert [e.id for e in on_one] == [e.id for e in on_two]  # the same global ids on both
    # A client that saw the first event on process one reconnects to process two: it gets the rest.
    rest: list[StreamEvent] = []
    listen(client_on(server.url, two), 3, rest, kinds=kinds, last_event_id=on_one[0].id).join(20)
    assert [e.id for e in rest] == [e.id for e in on_one[1:]]
    # And one that saw two of them on process two resumes on process one.
    tail: list[StreamEvent] = []
    listen(client_on(server.url, one), 2, tail, kinds=kinds, last_event_id=on_two[1].id).join(20)
    assert [e.id for e in tail] == [e.id for e in on_two[2:]]


def value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrape_until(client: MetamediaClient, done: Callable[[str], bool], timeout: float = 10) -> str:
    """`/metrics` once `done` holds: a process records a request after its last byte went out, so a
    scrape right after the answer may come a moment before that process's own bookkeeping."""
    deadline = time.monotonic() + timeout
    text = client.metrics()
    while not done(text) and time.monotonic() < deadline:
        time.sleep(0.05)
        text = client.metrics()
    return text


def test_metrics_on_either_process_sum_what_both_served(server: Server) -> None:
    one, two = worker_pids(server.url)
    search = {"route": "/search", "status": "200"}
    count = "metamedia_http_request_duration_seconds_count"
    lookups = "metamedia_result_cache_lookups_total"
    with client_on(server.url, one) as a, client_on(server.url, two) as b:
        before = a.metrics()
        for _ in range(3):
            a.search("a heist gone wrong", k=3)
        for _ in range(2):
            b.search("a heist gone wrong", k=3)

        def searches(text: str) -> float:
            return value(text, count, **search) - value(before, count, **search)

        def cache_lookups(text: str) -> float:
            return sum(
                value(text, lookups, result=r) - value(before, lookups, result=r) for r in ("hit", "miss")
            )

        after_a = scrape_until(a, lambda text: searches(text) >= 5 and cache_lookups(text) >= 5)
        after_b = scrape_until(b, lambda text: searches(text) >= 5 and cache_lookups(text) >= 5)
        items = b.stats()["items"]
    for after in (after_a, after_b):
        assert searches(after) == 5  # 3 served by one process, 2 by the other: summed, each once
        assert value(after, "metamedia_server_processes") == 2
        # The one shared catalog is reported once, not once per process.
        assert value(after, "metamedia_catalog_items") == items >= 30
        # Each process counted its own cache lookups; the sum has all five searches (hits or misses).
        assert cache_lookups(after) >= 5
    assert value(after_b, lookups, result="hit") >= 3  # the repeats: 2 on one process, 1 on the other


def test_a_killed_process_leaves_its_counts_in_the_sums_and_drops_from_the_live_count(server: Server) -> None:
    one, two = worker_pids(server.url)
    count = "metamedia_http_request_duration_seconds_count"
    with client_on(server.url, one) as a:
        before = a.metrics()
        os.kill(two, signal.SIGKILL)  # no goodbye: its files stay behind (the supervisor starts another)
        deadline = time.monotonic() + 30
        while pid_alive(two) and time.monotonic() < deadline:  # gone once the supervisor reaped it
            time.sleep(0.05)
        after = a.metrics()
    assert value(before, "metamedia_server_processes") == 2
    assert value(after, "metamedia_server_processes") in (1, 2)  # 2 once the replacement worker is up
    live = [p.name for p in (server.data / "run" / "metrics").glob("gauge_live*")]
    assert f"gauge_livesum_{one}.db" in live and f"gauge_livesum_{two}.db" not in live
    # what the dead process served is still counted (counters are cumulative, as Prometheus expects)
    assert value(after, count, route="/search", status="200") == value(
        before, count, route="/search", status="200"
    )
    assert value(after, count, route="/search", status="200") >= 5
