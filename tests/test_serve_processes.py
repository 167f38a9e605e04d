"""Two real server processes over one data directory, as `serve --workers 2` runs them: a write handled
by one reaches `/events` subscribers of the other, a client resumes on either with Last-Event-ID, and
`/metrics` on either reports the requests both served, also after one of them was killed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from metamedia.client import MetamediaClient, StreamEvent
from metamedia.coord.metrics_dir import prepare_multiprocess_metrics
from metamedia.engine import Engine
from metamedia.settings import Settings

from .conftest import TMDB_5000, free_port, write_csv_slice

pytestmark = pytest.mark.slow  # two server processes start: ~20-40 s on a busy 2-core machine

# One server process of several (what the workers supervisor starts; the port is its own here, so a
# test can pick the process it talks to).
WORKER = """
import sys
import uvicorn
from metamedia.api.app import create_app
from metamedia.settings import Settings

uvicorn.run(create_app(Settings.from_env(), workers=2), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@dataclass
class Worker:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def wait_ready(worker: Worker, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if worker.proc.poll() is not None:
            raise AssertionError(worker.log.read_text(errors="replace")[-3000:])
        try:
            if httpx.get(f"{worker.url}/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready:\n{worker.log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[list[Worker]]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("processes")
    data = root / "data"
    engine = Engine(Settings(data_dir=data), embedder=embedder)
    engine.ingest([write_csv_slice(TMDB_5000, root / "slice.csv", 30)])
    engine.close()
    env = {
        **os.environ,
        **prepare_multiprocess_metrics(data),
        "METAMEDIA_DATA_DIR": str(data),
        "METAMEDIA_AUTH_DISABLED": "1",
        "METAMEDIA_RATE_LIMIT": "",
        "METAMEDIA_LOG_JSON": "0",
        "METAMEDIA_DEMO_CATALOG": "",
        "METAMEDIA_EVENTS_HEARTBEAT_S": "0.5",
    }
    started = []
    for n in range(2):
        port = free_port()
        log = root / f"worker{n}.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen([sys.executable, "-c", WORKER, str(port)], env=env, stdout=sink, stderr=sink)
        started.append(Worker(f"http://127.0.0.1:{port}", proc, log))
    try:
        for worker in started:
            wait_ready(worker)
        yield started
    finally:
        for worker in started:
            worker.proc.terminate()
        for worker in started:
            worker.proc.wait(30)


def listen(url: str, n: int, out: list[StreamEvent], **kwargs: object) -> threading.Thread:
    def run() -> None:
        with MetamediaClient(url) as client:
            for event in client.events(timeout=20, **kwargs):  # type: ignore[arg-type]
                out.append(event)
                if len(out) == n:
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_writes_on_either_process_reach_subscribers_of_both_and_resume_on_either(workers) -> None:  # type: ignore[no-untyped-def]
    first, second = workers
    kinds = ["item.created", "interaction"]
    on_first: list[StreamEvent] = []
    on_second: list[StreamEvent] = []
    threads = [listen(first.url, 4, on_first, kinds=kinds), listen(second.url, 4, on_second, kinds=kinds)]
    time.sleep(1.0)  # both subscriptions open before the writes
    with MetamediaClient(first.url) as a, MetamediaClient(second.url) as b:
        # Catalog writes on process two, a user's interactions on process one, alternating.
        film = b.create_item({"title": "Written On Two"})["id"]
        a.http.post("/users/ada/interactions", json={"item_id": film, "kind": "like"}).raise_for_status()
        sequel = b.create_item({"title": "Two Again"})["id"]
        a.http.post("/users/ada/interactions", json={"item_id": sequel, "kind": "like"}).raise_for_status()
    for thread in threads:
        thread.join(20)
    expected = [("item.created", film), ("interaction", film), ("item.created", sequel), ("interaction", sequel)]
    for seen in (on_first, on_second):  # each subscriber: every event, once, in one global order
        assert [(e.kind, e.data["item_id"]) for e in seen] == expected
        ids = [int(e.id or 0) for e in seen]
        assert ids == sorted(ids) and len(set(ids)) == 4
    assert [e.id for e in on_first] == [e.id for e in on_second]  # the same global ids on both
    # A client that saw the first event on process one reconnects to process two: it gets the rest.
    rest: list[StreamEvent] = []
    listen(second.url, 3, rest, kinds=kinds, last_event_id=on_first[0].id).join(20)
    assert [e.id for e in rest] == [e.id for e in on_first[1:]]
    # And one that saw two of them on process two resumes on process one.
    tail: list[StreamEvent] = []
    listen(first.url, 2, tail, kinds=kinds, last_event_id=on_second[1].id).join(20)
    assert [e.id for e in tail] == [e.id for e in on_second[2:]]


def value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_on_either_process_sum_what_both_served(workers) -> None:  # type: ignore[no-untyped-def]
    first, second = workers
    search = {"route": "/search", "status": "200"}
    count = "metamedia_http_request_duration_seconds_count"
    with MetamediaClient(first.url) as a, MetamediaClient(second.url) as b:
        before = a.metrics()
        for _ in range(3):
            a.search("a heist gone wrong", k=3)
        for _ in range(2):
            b.search("a heist gone wrong", k=3)
        after_a, after_b = a.metrics(), b.metrics()
        items = b.stats()["items"]
    for after in (after_a, after_b):
        assert value(after, count, **search) - value(before, count, **search) == 5
        assert value(after, "metamedia_server_processes") == 2
        # The one shared catalog is reported once, not once per process.
        assert value(after, "metamedia_catalog_items") == items >= 30
    # Each process counted its own cache lookups; the sum has all five searches (hits or misses).
    lookups = sum(
        value(after_b, "metamedia_result_cache_lookups_total", result=r)
        - value(before, "metamedia_result_cache_lookups_total", result=r)
        for r in ("hit", "miss")
    )
    assert lookups >= 5
    assert value(after_b, "metamedia_result_cache_lookups_total", result="hit") >= 3  # 2 repeats on each


def test_a_killed_process_leaves_its_counts_in_the_sums_and_drops_from_the_live_count(workers) -> None:  # type: ignore[no-untyped-def]
    first, second = workers
    count = "metamedia_http_request_duration_seconds_count"
    with MetamediaClient(first.url) as a:
        before = a.metrics()
        second.proc.kill()  # no goodbye: its files stay behind
        second.proc.wait(10)
        after = a.metrics()
    assert value(before, "metamedia_server_processes") == 2
    assert value(after, "metamedia_server_processes") == 1
    # what the dead process served is still counted (counters are cumulative, as Prometheus expects)
    assert value(after, count, route="/search", status="200") == value(before, count, route="/search", status="200")
    assert value(after, count, route="/search", status="200") >= 5
