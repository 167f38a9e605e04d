"""Every MCP tool (listed by the server itself) x every caller: scopes and user binding over /mcp."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Server, fingerprint
from .mcpraw import ACCEPT, McpSession, parse


def tool_schemas(server: Server) -> tuple[dict[str, dict[str, object]], frozenset[str]]:
    """Every tool's input schema, and the tools that write (as the server declares them)."""
    session = McpSession(server.url, {"Authorization": f"Bearer {server.keys['admin']}"})
    try:
        listed = parse(session.post({"jsonrpc": "2.0", "id": 99, "method": "tools/list"}))["result"]["tools"]
        writes = frozenset(
            t["name"] for t in listed if (t.get("_meta") or {}).get("metamedia/scope") == "write"
        )
        return {t["name"]: t["inputSchema"] for t in listed}, writes
    finally:
        session.close()


def test_no_key_cannot_open_a_session(secure: Server) -> None:
    with httpx.Client(base_url=secure.url, headers=ACCEPT) as http:
        r = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}})
        assert r.status_code == 401 and r.json()["error"]["code"] == -32001


@pytest.mark.parametrize("caller", ["read", "write", "alice"])
def test_every_tool_enforces_scope_and_user(secure: Server, caller: str) -> None:
    tools, WRITE_TOOLS = tool_schemas(secure)
    assert {"record_interaction", "reflexion_store"} <= WRITE_TOOLS
    session = McpSession(secure.url, {"Authorization": f"Bearer {secure.keys[caller]}"})
    try:
        for name, schema in sorted(tools.items()):
            names_user = "user_id" in schema.get("properties", {})  # type: ignore[operator]
            arguments = {"user_id": "bob"} if names_user else {}
            refused = (
                (name in WRITE_TOOLS and caller == "read")
                or (caller == "alice" and names_user)
                or (caller == "alice" and name in WRITE_TOOLS)
            )
            before = fingerprint(secure.engine) if refused else None
            status, answer = session.call(name, arguments)
            if refused:
                assert status == 403 and answer["error"]["code"] == -32003, (caller, name, answer)
                assert fingerprint(secure.engine) == before, (caller, name)
            else:
                assert status == 200 and "result" in answer, (caller, name, status, answer)
    finally:
        session.close()
