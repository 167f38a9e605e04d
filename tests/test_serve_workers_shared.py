"""`metamedia serve --workers 2`: what a client does over several connections works whichever
worker takes each one — a reward for a recommendation another worker served, and MCP calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import demo_catalog_slice
from tests.test_serve_workers import get, processes_seen, serve_workers, wait_ready

MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def post(url: str, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
    with httpx.Client(timeout=30) as client:  # a new connection: whichever worker accepts it
        return client.post(url + path, json=body, headers=headers)


def mcp(url: str, message: dict[str, Any]) -> dict[str, Any]:
    """One JSON-RPC message on a new connection; the answer from a JSON or an event-stream body."""
    answer = post(url, "/mcp", message, MCP_HEADERS)
    assert answer.status_code == 200, answer.text
    if answer.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:].strip() for line in answer.text.splitlines() if line.startswith("data:")]
        return dict(json.loads(data[-1]))
    return dict(answer.json())


@pytest.mark.slow
def test_rewards_and_mcp_calls_work_whichever_worker_takes_them(tmp_path: Path) -> None:
    catalog = demo_catalog_slice(tmp_path / "demo.jsonl", 40)
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    with serve_workers(data_dir, catalog, log, workers=2) as (proc, url):
        wait_ready(proc, url, log)
        assert len(processes_seen(url, want=2)) == 2, log.read_text()[-2000:]

        # A recommendation, then at once the viewer's click naming it, each on a new connection:
        # about half the clicks reach the worker that did not serve the list (and has not yet
        # written the decision to the log). Every click must join its decision.
        for n in range(8):
            user = f"viewer-{n}"
            recs = get(url, f"/users/{user}/recommendations?k=3")
            assert recs.status_code == 200, recs.text
            served = recs.json()
            click = {"item_id": served["results"][0]["id"], "kind": "click", "decision_id": served["decision_id"]}
            stored = post(url, f"/users/{user}/interactions", click)
            assert stored.status_code == 201, stored.text
            assert stored.json()["reward"] is not None

        # MCP over streamable HTTP: each message on its own connection, no session to carry over.
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        assert "serverInfo" in mcp(url, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})["result"]
        for n in range(6):
            tools = mcp(url, {"jsonrpc": "2.0", "id": 2 + n, "method": "tools/list"})
            assert "search_media" in {tool["name"] for tool in tools["result"]["tools"]}
        call = {"name": "search_media", "arguments": {"query": "a heist in a casino", "k": 3}}
        for n in range(4):
            found = mcp(url, {"jsonrpc": "2.0", "id": 20 + n, "method": "tools/call", "params": call})
            assert not found["result"].get("isError"), found
