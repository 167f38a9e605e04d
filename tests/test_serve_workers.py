"""`metamedia serve --workers N` on a real server: several processes behind one port, one primary
that did the first load once, another that takes over when the primary dies, and clear errors."""

from __future__ import annotations

import gzip
import json
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
from typing import Any

import httpx
import pytest

from metamedia.api.workers import settings_from_json, settings_to_json
from metamedia.coord.roles import STOPPED, FirstLoad, ProcessRole
from metamedia.errors import InvalidInput
from metamedia.settings import Settings
from tests.conftest import demo_catalog_slice, free_port

CATALOG_ROWS = 40


def metamedia(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "metamedia.cli", *args], env=env, capture_output=True, text=True, timeout=120
    )


def base_env(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "METAMEDIA_DATA_DIR": str(data_dir),
        "METAMEDIA_AUTH_DISABLED": "1",
        "METAMEDIA_LOG_JSON": "0",
    }


@contextmanager
def serve_workers(data_dir: Path, catalog: Path, log: Path, workers: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    cmd = [sys.executable, "-m", "metamedia.cli", "serve", "--port", str(port), "--demo", str(catalog),
           "--workers", str(workers)]  # fmt: skip
    with log.open("ab") as sink:
        proc = subprocess.Popen(  # its own process group: a test may Ctrl-C the whole server
            cmd, env=base_env(data_dir), stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(90)


def get(url: str, path: str) -> httpx.Response:
    # a new connection per request: the kernel hands each to whichever worker accepts first
    with httpx.Client(timeout=10) as client:
        return client.get(url + path)


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            answer = get(url, "/ready")
            if answer.status_code == 200:
                return dict(answer.json())
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not ready after {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def answering(proc: subprocess.Popen[bytes], url: str, path: str, timeout: float = 120) -> httpx.Response:
    """The first answer once a worker accepts (the socket listens from the first worker's start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get(url, path)
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def processes_seen(url: str, *, want: int, tries: int = 200) -> dict[int, dict[str, Any]]:
    """{pid: process status} over new connections until `want` distinct ready processes answered."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(tries):
        answer = get(url, "/ready")
        if answer.status_code == 200:
            process = answer.json()["process"]
            seen[process["pid"]] = process
            if len(seen) >= want:
                break
        time.sleep(0.05)
    return seen


def test_settings_cross_to_the_workers_exactly() -> None:
    cfg = Settings(data_dir=Path("some/dir"), workers=3, cors_origins=("https://a.example",), port=9123)
    assert settings_from_json(settings_to_json(cfg)) == cfg
    with pytest.raises(InvalidInput):
        settings_from_json('{"no_such_setting": 1}')


def test_workers_setting_is_validated_and_zero_means_one_per_core() -> None:
    assert Settings.from_env({"METAMEDIA_WORKERS": "0"}).resolved_workers == len(os.sched_getaffinity(0))
    assert Settings.from_env({"METAMEDIA_WORKERS": "3"}).resolved_workers == 3
    with pytest.raises(InvalidInput, match="workers must be >= 0"):
        Settings.from_env({"METAMEDIA_WORKERS": "-1"})


def test_bad_worker_counts_exit_with_a_clear_error(tmp_path: Path) -> None:
    env = base_env(tmp_path / "data")
    negative = metamedia("serve", "--workers", "-1", env=env)
    assert negative.returncode != 0 and "workers must be >= 0" in negative.stderr
    with_ray = metamedia("serve", "--workers", "2", "--ray", env=env)
    assert with_ray.returncode != 0 and "--workers" in with_ray.stderr and "--ray" in with_ray.stderr
    assert not (tmp_path / "data" / "metamedia.db").exists()  # refused before anything was opened


@pytest.mark.slow
def test_two_workers_one_primary_one_first_load_and_a_takeover(tmp_path: Path) -> None:
    catalog = demo_catalog_slice(tmp_path / "demo.jsonl", CATALOG_ROWS)
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with serve_workers(data_dir, catalog, log, workers=2) as (proc, url):
        wait_ready(proc, url, log)
        seen = processes_seen(url, want=2)
        assert len(seen) == 2, f"only {list(seen)} answered:\n{log.read_text()[-2000:]}"
        assert sorted(p["primary"] for p in seen.values()) == [False, True]
        assert all(p["workers"] == 2 for p in seen.values())
        # the demo catalog was loaded once, by the primary: not doubled, and every worker serves it
        for _ in range(6):
            health = get(url, "/health").json()
            assert health["items"] == CATALOG_ROWS and health["indexed"] == CATALOG_ROWS
        text = log.read_text()
        assert len(re.findall(r"^loading demo catalog", text, re.M)) == 1, text[-3000:]
        assert len(re.findall(r"^ready after", text, re.M)) == 2  # each worker became ready once
        hits = get(url, "/search?q=space+adventure&k=3").json()
        assert len(hits["results"]) == 3

        primary = next(pid for pid, p in seen.items() if p["primary"])
        os.kill(primary, signal.SIGKILL)
        # the other worker (or the supervisor's replacement) takes the lock; the server keeps answering
        deadline = time.monotonic() + 180
        new_primary = None
        while time.monotonic() < deadline and new_primary is None:
            now = processes_seen(url, want=2, tries=20)
            new_primary = next((pid for pid, p in now.items() if p["primary"] and pid != primary), None)
        assert new_primary is not None, f"no new primary:\n{log.read_text()[-3000:]}"
        assert get(url, "/health").json()["items"] == CATALOG_ROWS
        assert get(url, "/search?q=space+adventure&k=3").status_code == 200
        proc.terminate()
        assert proc.wait(90) in (0, -signal.SIGTERM)


def test_the_primary_lock_passes_on_when_its_holder_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from metamedia.coord.roles import STOPPED, FirstLoad, ProcessRole;"
         f"role = ProcessRole({str(tmp_path)!r}, workers=2); print(role.start(), flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        role = ProcessRole(tmp_path, workers=2, retry_seconds=0.1)
        promoted: list[int] = []
        role.on_promoted.append(lambda: promoted.append(role.pid))
        assert role.start() is False and not role.is_primary
        assert role.status() == {"pid": os.getpid(), "primary": False, "workers": 2}
        # the marker counts only when it names the live primary
        marker = tmp_path / "run" / "startup-done"
        marker.write_text(json.dumps({"pid": 1, "state": "done"}))
        assert not role.startup_done()
        marker.write_text(json.dumps({"pid": holder.pid, "state": "done"}))
        assert role.first_load() == FirstLoad(holder.pid) and role.wait_for_first_load() == FirstLoad(holder.pid)
        marker.write_text(json.dumps({"pid": holder.pid, "state": "failed", "error": "IngestError: bad"}))
        assert role.wait_for_first_load() == FirstLoad(holder.pid, "IngestError: bad")  # stops waiting
        stopping = threading.Event()
        stopping.set()
        assert role.wait_for_first_load(stopping) is STOPPED
        holder.kill()
        holder.wait(10)
        assert not role.startup_done()  # a dead primary's marker no longer counts
        assert role.wait_for_first_load(stopping) is STOPPED and not role.is_primary  # never takes the lock
        deadline = time.monotonic() + 10
        while not promoted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert promoted == [os.getpid()] and role.is_primary
        role.mark_first_load("ValueError: one\ntwo")
        assert role.first_load() == FirstLoad(os.getpid(), "ValueError: one")
        role.mark_startup_done()
        assert role.first_load() == FirstLoad(os.getpid())
        role.close()
    finally:
        holder.kill()
        holder.wait(10)


@pytest.mark.slow
def test_a_primary_killed_during_the_first_load_leaves_it_to_another_worker(tmp_path: Path) -> None:
    catalog = demo_catalog_slice(tmp_path / "demo.jsonl", 200)  # no shipped vectors: the model embeds them
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with serve_workers(data_dir, catalog, log, workers=2) as (proc, url):
        deadline = time.monotonic() + 240
        while not (found := re.search(r"^process (\d+) is the primary", log.read_text(), re.M)):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        while not re.search(r"^loading demo catalog", log.read_text(), re.M):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        first = int(found.group(1))
        during = answering(proc, url, "/ready")  # the other worker waits without accepting: the primary answers
        if during.status_code == 503:  # (almost surely: 200 items take the model a while to embed)
            assert during.json()["reason"] == "loading"
            assert during.json()["process"] == {"pid": first, "primary": True, "workers": 2}
        os.kill(first, signal.SIGKILL)  # mid-load: nothing of this run says the first load is done
        wait_ready(proc, url, log)
        seen = processes_seen(url, want=2)
        assert first not in seen and len(seen) == 2, seen
        assert sorted(p["primary"] for p in seen.values()) == [False, True]
        for _ in range(6):
            health = get(url, "/health").json()
            assert health["items"] == 200 and health["indexed"] == 200, health
        assert len(re.findall(r"^loading demo catalog", log.read_text(), re.M)) == 2  # resumed once


def answers_per_process(url: str, *, want: int, status: int, timeout: float = 240) -> dict[int, dict[str, Any]]:
    """{pid: /ready body} over new connections until `want` distinct processes answered `status`."""
    seen: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        try:
            answer = get(url, "/ready")
            if answer.status_code == status:
                seen[answer.json()["process"]["pid"]] = answer.json()
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    return seen


@pytest.mark.slow
def test_a_failed_first_load_is_reported_by_every_worker_not_waited_on(tmp_path: Path) -> None:
    rows = demo_catalog_slice(tmp_path / "demo.jsonl", CATALOG_ROWS).read_bytes()
    packed = gzip.compress(rows)
    catalog = tmp_path / "demo.jsonl.gz"
    catalog.write_bytes(packed[: len(packed) // 2])  # a truncated download: the load cannot read it
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with serve_workers(data_dir, catalog, log, workers=2) as (proc, url):
        seen = answers_per_process(url, want=2, status=503)
        assert len(seen) == 2, f"only {list(seen)} answered:\n{log.read_text()[-3000:]}"
        primary = next(body for body in seen.values() if body["process"]["primary"])
        other = next(body for body in seen.values() if not body["process"]["primary"])
        for body in seen.values():
            assert body["reason"] == "failed" and body["startup"]["state"] == "failed", body
        assert primary["startup"]["error"].startswith("IngestError: cannot read")
        pid = primary["process"]["pid"]
        assert other["startup"]["error"] == (
            f"the primary (process {pid}) failed its first load: {primary['startup']['error']}"
        )
        marker = json.loads((data_dir / "run" / "startup-done").read_text())
        assert marker == {"pid": pid, "state": "failed", "error": primary["startup"]["error"]}
        for _ in range(4):  # the API says why it does not serve, on whichever worker answers
            search = get(url, "/search?q=space")
            assert search.status_code == 503 and "first load failed" in search.json()["error"]
        assert proc.poll() is None  # the server stays up and says what failed
        # the primary dies: the worker that takes the lock over keeps the failure (the original error)
        os.kill(pid, signal.SIGKILL)
        other_pid = other["process"]["pid"]
        deadline = time.monotonic() + 60
        while json.loads((data_dir / "run" / "startup-done").read_text())["pid"] != other_pid:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        assert json.loads((data_dir / "run" / "startup-done").read_text())["error"] == primary["startup"]["error"]
        after = answers_per_process(url, want=2, status=503)  # with the supervisor's replacement
        assert len(after) == 2 and pid not in after, f"{list(after)}:\n{log.read_text()[-3000:]}"
        assert all(body["reason"] == "failed" for body in after.values())
        assert after[other_pid]["process"]["primary"] is True
        replacement = next(body for p, body in after.items() if p != other_pid)
        assert replacement["startup"]["error"] == (
            f"the primary (process {other_pid}) failed its first load: {primary['startup']['error']}"
        )
        proc.terminate()
        assert proc.wait(90) in (0, -signal.SIGTERM)


@pytest.mark.slow
def test_ctrl_c_during_the_first_load_never_hands_it_to_a_stopping_worker(tmp_path: Path) -> None:
    catalog = demo_catalog_slice(tmp_path / "demo.jsonl", 200)  # no shipped vectors: the model embeds them
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with serve_workers(data_dir, catalog, log, workers=2) as (proc, url):
        deadline = time.monotonic() + 240
        while not (re.search(r"^loading demo catalog", text := log.read_text(), re.M) and "waits for the primary" in text):
            assert proc.poll() is None and time.monotonic() < deadline, text[-3000:]
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the supervisor and both workers get it
        proc.wait(120)
        text = log.read_text()
        assert len(re.findall(r"is the primary of", text)) == 1, text[-3000:]
        assert len(re.findall(r"^loading demo catalog", text, re.M)) == 1, text[-3000:]
        assert "stops before it opened" in text, text[-3000:]
        marker = data_dir / "run" / "startup-done"
        assert not marker.exists() or json.loads(marker.read_text())["state"] != "done"
