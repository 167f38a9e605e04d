"""Real-browser fixtures: a real server (subprocess, free loopback port, real model, a small real
catalog) and Debian's Chromium driven by Playwright, with every request to another host aborted
and counted."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import DEMO_CATALOG, REPO, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # the test runs as root in a container
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "tests" / "browser" / "artifacts"  # screenshots, gitignored
SLICE_ITEMS = 400


def demo_slice(dest: Path, n: int = SLICE_ITEMS) -> Path:
    """The n most-voted movies of the bundled demo catalog (real rows, unchanged)."""
    with gzip.open(DEMO_CATALOG, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows.sort(key=lambda r: (-(r.get("vote_count") or 0), r["title"]))
    with dest.open("w", encoding="utf-8") as out:
        for row in rows[:n]:
            out.write(json.dumps(row) + "\n")
    return dest


@dataclass
class Server:
    """A metamedia server subprocess on a loopback port."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]

    def create_key(self, *args: str) -> str:
        """A new API key from the CLI (`metamedia keys create ...`) on the server's data folder."""
        cmd = [sys.executable, "-m", "metamedia.cli", "keys", "create", *args]
        out = subprocess.run(
            cmd, env=self.env, capture_output=True, text=True, check=True, timeout=120
        ).stdout
        return next(word for word in out.split() if word.startswith("mm_"))

    @property
    def origin(self) -> str:
        return urlsplit(self.url).netloc

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def get(self, path: str, **kw: Any) -> Any:
        r = httpx.get(self.url + path, timeout=60, **kw)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = httpx.post(self.url + path, json=body, timeout=60)
        r.raise_for_status()
        return r.json()


@contextmanager
def running_server(
    base: Path, *, auth: bool, items: int = SLICE_ITEMS, port: int | None = None, whole_demo: bool = False
) -> Iterator[Server]:
    """`metamedia serve` on a loopback port (free, or the one given: a restart keeps the page's origin)
    over the demo slice (kept when it is already there), or the whole demo catalog with its shipped
    vectors; auth off (loopback demo) or on."""
    catalog = DEMO_CATALOG if whole_demo else base / "slice.jsonl"
    if not catalog.is_file():
        demo_slice(catalog, items)
    port = port or free_port()
    env = {
        **os.environ,
        "METAMEDIA_DATA_DIR": str(base / "data"),
        "METAMEDIA_LOG_JSON": "0",
        "METAMEDIA_RATE_LIMIT": "off",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if auth:
        env.pop("METAMEDIA_AUTH_DISABLED", None)
    else:
        env["METAMEDIA_AUTH_DISABLED"] = "1"
    log = base / "server.log"
    cmd = [sys.executable, "-m", "metamedia.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--demo", str(catalog)]  # fmt: skip
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}", proc, log, env)
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(srv.url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready in 300 s: {log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("browser-server"), auth=False) as srv:
        yield srv


@dataclass
class Guard:
    """Requests the page tried to make to any host but the server's (aborted)."""

    origin: str
    foreign: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def guard(server: Server) -> Guard:
    return Guard(server.origin)


@pytest.fixture
def page(browser: Any, server: Server, guard: Guard, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser profile (new localStorage: a new metamedia profile) on the server's origin."""
    width = getattr(request, "param", 1280)
    context = browser.new_context(viewport={"width": width, "height": 900}, base_url=server.url)

    def route(r: Any) -> None:
        if urlsplit(r.request.url).netloc == guard.origin or r.request.url.startswith("data:"):
            r.continue_()
        else:
            guard.foreign.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.set_default_timeout(30_000)
    yield tab
    context.close()
    assert guard.foreign == [], f"requests to other hosts: {guard.foreign}"
    assert errors == [], f"uncaught errors in the page: {errors}"


def shot(page: Any, name: str) -> Path:
    """Save a screenshot of the journey's last step as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
