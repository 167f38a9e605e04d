"""The MCP server over streamable HTTP on a real API server subprocess, behind the API's keys and scopes.

The SDK's streamable HTTP client connects with real API keys; every tool is called with valid and
bad input; refusals (no key, missing scope, another user's data) come back as MCP errors; a write
made over MCP is visible through the HTTP API.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
import pytest
from anyio.from_thread import start_blocking_portal
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from metamedia.api.app import create_app
from metamedia.api.keys import KeyStore
from metamedia.engine import Engine
from metamedia.errors import UserNotFound
from metamedia.settings import Settings
from metamedia.store.factory import open_store

from .test_mcp_stdio import (
    SUBPROCESS_ENV,
    McpCaller,
    check_bad_calls,
    check_catalog_tools,
    check_memory_tools,
    check_tool_list,
    check_user_tools,
    data_dir,  # noqa: F401  (module fixture: a small real catalog)
    engine,  # noqa: F401  (module fixture: the reference engine)
)

# Until api/app.py mounts MCP itself, serve create_app() with mount_mcp() applied.
SERVE_WITH_MCP = (
    "import sys, uvicorn\n"
    "from metamedia.api.app import create_app\n"
    "from metamedia.mcp.http import mount_mcp\n"
    "from metamedia.settings import Settings\n"
    "app = create_app(Settings.from_env())\n"
    "mount_mcp(app)\n"
    "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_mounts_mcp(folder: Path) -> bool:
    app = create_app(Settings(data_dir=folder))
    return any(getattr(route, "path", None) == "/mcp" for route in app.routes)


@pytest.fixture(scope="module")
def keys(data_dir: Path) -> dict[str, str]:  # noqa: F811
    """Real API keys: read-only, read+write, and write bound to one user."""
    store = open_store(Settings(data_dir=data_dir).resolved_database_url)
    try:
        keys = KeyStore(store.engine)
        return {
            "read": keys.create(["read"], name="mcp-read")[1],
            "write": keys.create(["write"], name="mcp-write")[1],
            "bound": keys.create(["write"], user_id="bound-user", name="mcp-bound")[1],
        }
    finally:
        store.close()


@pytest.fixture(scope="module")
def base_url(data_dir: Path, keys: dict[str, str]) -> Iterator[str]:  # noqa: F811
    port = free_port()
    env = {**os.environ, **SUBPROCESS_ENV, "METAMEDIA_DATA_DIR": str(data_dir), "METAMEDIA_LOG_JSON": "0"}
    if app_mounts_mcp(data_dir):
        cmd = [sys.executable, "-c", "from metamedia.cli import main; main()", "serve", "--port", str(port)]
    else:
        cmd = [sys.executable, "-c", SERVE_WITH_MCP, str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # the model loads before ready: slow on a busy machine
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready in 300 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextmanager
def mcp_over_http(base_url: str, api_key: str | None) -> Iterator[McpCaller]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    @asynccontextmanager
    async def session() -> AsyncIterator[ClientSession]:
        async with (
            create_mcp_http_client(headers=headers) as http,
            streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            yield s

    with start_blocking_portal() as portal, portal.wrap_async_context_manager(session()) as s:
        yield McpCaller(portal, s)


@pytest.fixture(scope="module")
def writer(base_url: str, keys: dict[str, str]) -> Iterator[McpCaller]:
    with mcp_over_http(base_url, keys["write"]) as caller:
        yield caller


def test_lists_every_tool_over_http(writer: McpCaller) -> None:
    check_tool_list(writer)


def test_every_tool_answers_like_the_engine_over_http(writer: McpCaller, engine: Engine) -> None:  # noqa: F811
    check_catalog_tools(writer, engine)
    check_user_tools(writer, engine, "http-user")
    check_memory_tools(writer, engine, "http")


def test_bad_input_over_http_says_what_to_fix(writer: McpCaller) -> None:
    check_bad_calls(writer)


def test_interaction_recorded_over_mcp_is_visible_through_the_http_api(
    writer: McpCaller,
    base_url: str,
    keys: dict[str, str],
    engine: Engine,  # noqa: F811
) -> None:
    item = engine.search("detective mystery", 1)["results"][0]["id"]
    writer.ok(
        "record_interaction",
        {"user_id": "seen-over-http", "item_id": item, "kind": "watch", "completion": 0.9},
    )
    r = httpx.get(
        f"{base_url}/users/seen-over-http/profile",
        headers={"Authorization": f"Bearer {keys['read']}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    profile = r.json()
    assert profile["interactions"] == 1
    assert [x["item_id"] for x in profile["recent"]] == [item]
    assert profile["counts"] == {"watch": 1}


def connection_refusal(base_url: str, api_key: str | None) -> MCPError:
    """The MCP error that ends an attempt to connect (the transport raises it inside task groups)."""
    try:
        with mcp_over_http(base_url, api_key):
            pass
    except BaseException as exc:  # noqa: BLE001 - unwrapped below
        pending: list[BaseException] = [exc]
        while pending:
            current = pending.pop()
            if isinstance(current, MCPError):
                return current
            pending += list(getattr(current, "exceptions", ()))
        raise
    raise AssertionError("the connection was accepted")


def test_no_key_or_a_wrong_key_is_refused(base_url: str) -> None:
    assert "an API key is required" in str(connection_refusal(base_url, None))
    assert "missing or invalid API key" in str(connection_refusal(base_url, "mm_000000000000_" + "x" * 43))


def test_read_key_reads_but_cannot_write(base_url: str, keys: dict[str, str], engine: Engine) -> None:  # noqa: F811
    with mcp_over_http(base_url, keys["read"]) as reader:
        expected = [r["id"] for r in engine.search("love story", 3)["results"]]
        assert [
            r["id"] for r in reader.ok("search_media", {"query": "love story", "k": 3})["results"]
        ] == expected
        with pytest.raises(MCPError, match="lacks the 'write' scope, which record_interaction needs"):
            reader.call("record_interaction", {"user_id": "r", "item_id": expected[0], "kind": "like"})
        with pytest.raises(MCPError, match="lacks the 'write' scope, which strategy_store needs"):
            reader.call("strategy_store", {"title": "x", "description": "y", "task_type": "z"})
    with pytest.raises(UserNotFound):  # the refused write did not happen
        engine.recs.profile("r")


def test_user_bound_key_only_touches_its_user(base_url: str, keys: dict[str, str], engine: Engine) -> None:  # noqa: F811
    item = engine.search("western", 1)["results"][0]["id"]
    with mcp_over_http(base_url, keys["bound"]) as bound:
        bound.ok("record_interaction", {"user_id": "bound-user", "item_id": item, "kind": "like"})
        assert bound.ok("get_profile", {"user_id": "bound-user"})["interactions"] == 1
        with pytest.raises(MCPError, match="bound to another user"):
            bound.call("record_interaction", {"user_id": "someone-else", "item_id": item, "kind": "like"})
        with pytest.raises(MCPError, match="bound to another user"):
            bound.read_json("metamedia://users/someone-else/profile")
        with pytest.raises(MCPError, match="may only write its own user's data"):
            bound.call("strategy_store", {"title": "x", "description": "y", "task_type": "z"})
        assert bound.read_json("metamedia://users/bound-user/profile")["interactions"] == 1
