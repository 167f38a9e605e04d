"""The MCP server over streamable HTTP, on the API server, behind the API's keys and scopes.

`mount_mcp(app)` adds the endpoint (default `/mcp`) to the FastAPI app and starts the MCP session
manager inside the app's lifespan, over the same engine as the HTTP routes. Every request is
authenticated like an API request (`Authorization: Bearer mm_...` or `X-API-Key`, same rate
limits); a `tools/call` of a tool that writes needs the `write` scope, everything else `read`; a
key bound to a user may only touch that user. Refusals are JSON-RPC errors the client surfaces.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import HTTPException
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from .server import build_server, write_tool_names

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..engine import Engine

MCP_PATH = "/mcp"
PROFILE_URI = re.compile(r"^metamedia://users/(?P<user_id>[^/]+)/profile$")
# JSON-RPC server-error codes for refusals made before the MCP server sees the message.
ERROR_CODES = {401: -32001, 403: -32003, 429: -32029, 503: -32005}


class Principal(Protocol):
    """The authenticated caller, as the HTTP API's authentication gives it (api.auth.Principal)."""

    @property
    def scopes(self) -> frozenset[str]: ...
    @property
    def user_id(self) -> str | None: ...
    def ensure_user(self, user_id: object) -> None: ...


def authenticate(request: Request) -> Principal:
    """The caller, by the hook the API app installs as `app.state.authenticate` (401/429 like any
    API request); the endpoint refuses everyone when no such hook is installed."""
    hook = getattr(request.app.state, "authenticate", None)
    if hook is None:
        raise HTTPException(status_code=503, detail="the MCP endpoint has no authentication configured")
    principal: Principal = hook(request)
    return principal


def required_access(message: object, write_tools: Collection[str]) -> tuple[str, str | None, bool]:
    """What one JSON-RPC message needs: (scope, user id it names or None, whether it writes)."""
    if not isinstance(message, dict) or not isinstance(message.get("params"), dict):
        return "read", None, False
    params: dict[str, Any] = message["params"]
    if message.get("method") == "tools/call":
        name = params.get("name")
        arguments = params.get("arguments")
        user_id = arguments.get("user_id") if isinstance(arguments, dict) else None
        writes = name in write_tools
        return ("write" if writes else "read"), (None if user_id is None else str(user_id)), writes
    if message.get("method") == "resources/read":
        match = PROFILE_URI.match(str(params.get("uri", "")))
        return "read", (match["user_id"] if match else None), False
    return "read", None, False


def check_access(principal: Principal, messages: Iterable[object], write_tools: Collection[str]) -> None:
    """Raise HTTPException 403 unless `principal` may send every one of `messages`."""
    for message in messages:
        scope, user_id, writes = required_access(message, write_tools)
        if scope not in principal.scopes:
            tool = message.get("params", {}).get("name") if isinstance(message, dict) else None
            raise HTTPException(
                status_code=403,
                detail=f"this key lacks the {scope!r} scope" + (f", which {tool} needs" if tool else ""),
            )
        if principal.user_id is None:
            continue
        if user_id is not None:
            principal.ensure_user(user_id)
        elif writes:
            raise HTTPException(status_code=403, detail="a user-bound key may only write its own user's data")


def _parsed_messages(body: bytes) -> list[object]:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        return []  # not JSON: the MCP transport answers with a parse error
    return parsed if isinstance(parsed, list) else [parsed]


def _refusal(exc: HTTPException) -> JSONResponse:
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": ERROR_CODES.get(exc.status_code, -32000), "message": exc.detail},
    }
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


class McpHttpApp:
    """ASGI app: authenticate and authorise like the HTTP API, then hand over to the MCP session manager."""

    def __init__(self) -> None:
        self._manager: StreamableHTTPSessionManager | None = None
        self._write_tools: frozenset[str] = frozenset()

    @asynccontextmanager
    async def running(self, engine: Engine) -> AsyncIterator[None]:
        """Serve MCP over `engine` while the context is open (enter it in the app's lifespan)."""
        server = build_server(engine)
        self._write_tools = await write_tool_names(server)
        # The API's keys, not the Host header, guard this endpoint; it must work behind any hostname.
        server.streamable_http_app(
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False)
        )
        manager = server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager
        if scope["type"] != "http":
            return
        if manager is None:
            await _refusal(HTTPException(503, "the MCP endpoint is not running"))(scope, receive, send)
            return
        request = Request(scope, receive)
        body = await request.body() if request.method == "POST" else b""
        try:
            principal = authenticate(request)
            check_access(principal, _parsed_messages(body), self._write_tools)
        except HTTPException as exc:
            await _refusal(exc)(scope, receive, send)
            return
        await manager.handle_request(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive callable that yields the already-read body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def mount_mcp(app: FastAPI, path: str = MCP_PATH) -> McpHttpApp:
    """Serve MCP at `path` on `app`, over the app's engine, for as long as the app runs."""
    endpoint = McpHttpApp()
    # A plain route, not a Mount: the endpoint answers at `path` itself, with no redirect to `path/`.
    app.router.routes.append(
        Route(path, endpoint, methods=["GET", "POST", "DELETE"], include_in_schema=False)
    )
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(target: Any) -> AsyncIterator[Any]:
        async with inner(target) as state, endpoint.running(target.state.engine):
            yield state

    app.router.lifespan_context = lifespan
    return endpoint
