"""The demo as a new user meets it, on a real server process: progress in the log, /health during the
first load and /ready 503 until it is done, a clean stop on SIGTERM half-way that the next start
finishes, and collaborative recommendations for the bundled MovieLens community."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from metamedia.progress import LoadCancelled, ProgressLog
from tests.conftest import DEMO_CATALOG, demo_catalog_slice, free_port

STOPPED = (0, -signal.SIGTERM)  # uvicorn re-raises the signal it handled once it has shut down


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, what: str | re.Pattern[str], timeout: float) -> None:
        """Wait for a substring (or a regular expression) in the log."""

        def found(text: str) -> bool:
            return bool(what.search(text)) if isinstance(what, re.Pattern) else what in text

        deadline = time.monotonic() + timeout
        while not found(self.text()):
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited {self.proc.returncode} before {what!r}:\n{self.text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what!r} in the log after {timeout} s:\n{self.text()[-3000:]}")
            time.sleep(0.1)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"not ready after {timeout} s:\n{self.text()[-3000:]}")
            time.sleep(0.3)


@contextmanager
def serve(data_dir: Path, catalog: Path, log: Path, *, progress_every: float = 0.5) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "METAMEDIA_DATA_DIR": str(data_dir),
        "METAMEDIA_AUTH_DISABLED": "1",
        "METAMEDIA_RATE_LIMIT": "",
        "METAMEDIA_LOG_JSON": "0",
        "METAMEDIA_PROGRESS_LOG_SECONDS": str(progress_every),
    }
    cmd = [sys.executable, "-m", "metamedia.cli", "serve", "--port", str(port), "--demo", str(catalog)]
    with log.open("ab") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield Server(proc, f"http://127.0.0.1:{port}", log)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(60)


def wait_answering(server: Server, path: str, timeout: float = 120) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(server.url + path, timeout=5)
        except httpx.TransportError:
            if server.proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.slow
def test_sigterm_during_the_first_load_stops_cleanly_and_the_next_start_finishes(tmp_path: Path) -> None:
    # No shipped vectors beside this catalog: the model embeds 800 items, long enough to stop half-way.
    catalog = demo_catalog_slice(tmp_path / "demo.jsonl", 800)
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    # A progress line per batch (not per 0.5 s), so the first batch of 64 texts surely logs one
    # before the stop, however fast the machine embeds.
    with serve(data_dir, catalog, log, progress_every=0) as server:
        health = wait_answering(server, "/health")
        assert health.status_code == 200 and "startup" in health.json()
        ready = httpx.get(server.url + "/ready", timeout=5)
        if ready.status_code == 503:  # still loading (almost surely: the model is not even loaded yet)
            assert ready.json()["reason"] in ("loading", "starting")
            search = httpx.get(server.url + "/search", params={"q": "space"}, timeout=5)
            if search.status_code == 503:
                assert "still loading" in search.json()["error"] and search.headers["retry-after"] == "5"
        # A progress line of the embedding step (not just any line of the metamedia.embed logger):
        # the load is under way and far from done.
        server.wait_for(re.compile(r"embed: \d+/800 \(\d+%\), \d+/s, ETA "), timeout=300)
        during = httpx.get(server.url + "/ready", timeout=5)
        assert during.status_code == 503 and during.json()["reason"] == "loading"
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(180) in STOPPED  # the load stops at its next batch of 64 texts
    first = log.read_text(encoding="utf-8")
    assert "startup load stopped" in first and "Finished server process" in first
    assert "Traceback" not in first
    assert "/s, ETA " in first  # done/total, rate and ETA

    with serve(data_dir, catalog, log) as server:
        server.wait_ready(timeout=600)
        body = httpx.get(server.url + "/health", timeout=5).json()
        assert body["items"] == body["indexed"] == 800 and body["startup"]["state"] == "ready"
        found = httpx.get(server.url + "/search", params={"q": "space adventure with aliens"}, timeout=30)
        assert found.status_code == 200 and found.json()["results"]
    second = log.read_text(encoding="utf-8")[len(first) :]
    assert "loading demo catalog" in second  # the stopped load was finished, not forgotten


@pytest.mark.slow
def test_the_fresh_demo_uses_shipped_vectors_and_serves_collaborative_recommendations(tmp_path: Path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with serve(data_dir, DEMO_CATALOG, log) as server:
        server.wait_ready(timeout=600)
        text = server.text()
        assert "shipped embeddings match the installed model" in text
        assert "merge: " in text and "Traceback" not in text
        found = httpx.get(server.url + "/search", params={"q": "space adventure with aliens"}, timeout=30)
        assert found.status_code == 200 and len(found.json()["results"]) == 10
        server.wait_for("demo community ready", timeout=900)
        recs = httpx.get(
            server.url + "/users/ml-1/recommendations", params={"algorithm": "itemknn"}, timeout=60
        )
        assert recs.status_code == 200, recs.text
        body = recs.json()
        assert body["algorithm"] == "itemknn" and not body["cold_start"]
        assert len(body["results"]) == 10 and all(row["reasons"] for row in body["results"])
        assert any("liked" in reason for row in body["results"] for reason in row["reasons"])
        auto = httpx.get(server.url + "/users/ml-1/recommendations", timeout=60).json()
        assert auto["results"] and not auto["cold_start"]
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(180) in STOPPED
        assert "Finished server process" in server.text()


def test_progress_lines_give_done_total_rate_and_eta_and_stop_on_cancel(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("metamedia.test.progress")
    caplog.set_level(logging.INFO, logger=logger.name)
    cancel = threading.Event()
    progress = ProgressLog(logger, every=0.0, cancel=cancel)
    progress("embed", 0, 1000)
    time.sleep(0.05)
    progress("embed", 250, 1000)
    progress("embed", 1000, 1000)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("embed: 250/1000 (25%), ") and ", ETA " in line for line in lines), lines
    assert lines[-1].startswith("embed: 1000/1000 done in ")
    assert progress.snapshot() == {"stage": "embed", "done": 1000, "total": 1000}
    cancel.set()
    with pytest.raises(LoadCancelled, match="embed at 10/1000"):
        progress("embed", 10, 1000)
