"""JSON-RPC over MCP's streamable HTTP, by hand: what an attacker's script would send."""

from __future__ import annotations

import json
from typing import Any

import httpx

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def parse(response: httpx.Response) -> Any:
    """The JSON-RPC answer of a response, whether sent as JSON or as one SSE event."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        for line in response.text.splitlines():
            if line.startswith("data:"):
                return json.loads(line[5:])
        return None
    return response.json()


class McpSession:
    """One initialised MCP session over HTTP with the given headers."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=url, headers={**ACCEPT, **headers}, timeout=30)
        self._next = 0
        first = self.post(
            {"jsonrpc": "2.0", "id": self._id(), "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "adversary", "version": "0"}}}
        )  # fmt: skip
        assert first.status_code == 200, first.text
        self.session_id = first.headers.get("mcp-session-id", "")
        self.version = parse(first)["result"]["protocolVersion"]
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def _id(self) -> int:
        self._next += 1
        return self._next

    def headers(self) -> dict[str, str]:
        out = {"mcp-protocol-version": getattr(self, "version", "2025-06-18")}
        if getattr(self, "session_id", ""):
            out["mcp-session-id"] = self.session_id
        return out

    def post(self, message: Any, **kwargs: Any) -> httpx.Response:
        return self.http.post("/mcp", json=message, headers=self.headers(), **kwargs)

    def call(self, tool: str, arguments: dict[str, Any]) -> tuple[int, Any]:
        """(HTTP status, JSON-RPC answer) of one tools/call."""
        response = self.post(
            {"jsonrpc": "2.0", "id": self._id(), "method": "tools/call",
             "params": {"name": tool, "arguments": arguments}}
        )  # fmt: skip
        return response.status_code, parse(response)

    def close(self) -> None:
        self.http.close()


def tool_failed(answer: Any) -> bool:
    """True when a tools/call answer is a refusal or a tool error."""
    return "error" in answer or bool(answer.get("result", {}).get("isError"))


def tool_result(answer: Any) -> Any:
    result = answer["result"]
    assert not result.get("isError"), result
    return result.get("structuredContent")
