"""The MCP server over streamable HTTP, on the API server, behind the API's keys and scopes.

`mount_mcp(app)` adds the endpoint (default `/mcp`) to the FastAPI app and starts the MCP session
manager inside the app's lifespan, over the same engine as the HTTP routes. Every request is
authenticated like an API request (`Authorization: Bearer mm_...` or `X-API-Key`, same rate
limits); a `tools/call` of a tool that writes needs the `write` scope, everything else `read`; a
key bound to a user may only touch that user (the same rules as the HTTP routes: metamedia.access),
and an MCP session belongs to the key that opened it. Refusals are JSON-RPC errors the client
surfaces. With authentication off (the loopback demo) the SDK's DNS-rebinding protection is on.
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

from ..access import confine_user, ensure_memory_visible
from ..asgiutil import replay_body
from ..errors import MetamediaError
from ..jsonsafe import JsonLimitExceeded
from ..jsonsafe import loads as bounded_loads
from ..memory.facade import MemoryFacade
from .server import build_server, write_tool_names

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..engine import Engine

MCP_PATH = "/mcp"
PROFILE_URI = re.compile(r"^metamedia://users/(?P<user_id>[^/]+)/profile$")
# JSON-RPC server-error codes for refusals made before the MCP server sees the message.
ERROR_CODES = {401: -32001, 403: -32003, 404: -32004, 422: -32600, 429: -32029, 503: -32005}
# Read tools whose answer is about one user: a bound key gets its own user's (user_id filled in).
USER_FILTERED_TOOLS = frozenset({"reflexion_search", "causal_effects"})
# Read tools naming a memory by id: a bound key may only name shared memories or its own user's.
MEMORY_ID_TOOLS = {"reflexion_analyze": "episode_id"}
LOOPBACK_HOSTS = ["127.0.0.1", "127.0.0.1:*", "localhost", "localhost:*", "[::1]", "[::1]:*"]
LOOPBACK_ORIGINS = [f"{scheme}://{host}" for scheme in ("http", "https") for host in LOOPBACK_HOSTS]
SESSION_HEADER = "mcp-session-id"
MAX_SESSIONS = 100_000


class Principal(Protocol):
    """The authenticated caller, as the HTTP API's authentication gives it (api.auth.Principal)."""

    @property
    def scopes(self) -> frozenset[str]: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def key_id(self) -> str | None: ...
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


def confine_messages(principal: Principal, messages: list[object], memories: Any) -> bool:
    """Apply the per-user read rules to tool calls, in place; True when an argument was filled in."""
    if principal.user_id is None:
        return False
    changed = False
    for message in messages:
        if not isinstance(message, dict) or message.get("method") != "tools/call":
            continue
        params = message.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("arguments", {}), dict):
            continue
        name, arguments = params.get("name"), params.setdefault("arguments", {})
        if name in USER_FILTERED_TOOLS:
            asked = arguments.get("user_id")
            arguments["user_id"] = confine_user(principal, None if asked is None else str(asked))
            changed = changed or asked is None
        if name in MEMORY_ID_TOOLS and memories is not None:
            memory_id = arguments.get(MEMORY_ID_TOOLS[name])
            if isinstance(memory_id, str):
                ensure_memory_visible(principal, memories, memory_id)
    return changed


def _parsed_messages(body: bytes) -> list[object]:
    try:
        parsed = bounded_loads(body) if body else None
    except JsonLimitExceeded as exc:
        raise HTTPException(status_code=422, detail=exc.message) from exc
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
        self._memories: MemoryFacade | None = None
        # MCP session id -> the key id that opened it ("" with authentication off).
        self._owners: dict[str, str] = {}

    @asynccontextmanager
    async def running(
        self, engine: Engine, *, auth_disabled: bool = False, stateless: bool = False
    ) -> AsyncIterator[None]:
        """Serve MCP over `engine` while the context is open (enter it in the app's lifespan).

        `stateless`: no MCP sessions (each request stands alone), for several server processes behind
        one port, where a session opened in one process would be unknown to the next request's."""
        server = build_server(engine)
        self._write_tools = await write_tool_names(server)
        self._memories = MemoryFacade(engine)
        if auth_disabled:  # nothing but the Host and Origin headers stands between a web page and the demo
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=LOOPBACK_HOSTS,
                allowed_origins=LOOPBACK_ORIGINS,
            )
        else:  # the API's keys guard this endpoint; it must work behind any hostname
            security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        server.streamable_http_app(transport_security=security, stateless_http=stateless)
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
            owner = principal.key_id or ""
            session = request.headers.get(SESSION_HEADER)
            if session is not None and self._owners.get(session, owner) != owner:
                # Another key's session: answered like an unknown one, so ids cannot be probed.
                raise HTTPException(status_code=404, detail="no such MCP session")
            messages = _parsed_messages(body)
            check_access(principal, messages, self._write_tools)
            try:
                if confine_messages(principal, messages, self._memories):
                    batch = body.lstrip().startswith(b"[")
                    body = json.dumps(messages if batch else messages[0]).encode()
            except MetamediaError as exc:
                raise HTTPException(status_code=exc.status_code, detail=exc.message) from exc
        except HTTPException as exc:
            await _refusal(exc)(scope, receive, send)
            return
        if request.method == "DELETE" and session is not None:
            self._owners.pop(session, None)
        await manager.handle_request(scope, replay_body(body, receive), self._recording_owner(send, owner))

    def _recording_owner(self, send: Send, owner: str) -> Send:
        """Remember which key a new session (the id in the response header) belongs to."""

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name.lower() == SESSION_HEADER.encode():
                        self._owners.setdefault(value.decode("latin-1"), owner)
                        if len(self._owners) > MAX_SESSIONS:
                            self._owners.pop(next(iter(self._owners)))
            await send(message)

        return recording


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
        settings = target.state.settings
        auth_disabled = bool(settings.auth_disabled)
        stateless = getattr(settings, "workers", 1) != 1  # sessions live in one process's memory
        async with inner(target) as state:  # the engine exists once the app's own lifespan has started
            engine = getattr(target.state, "engine", None)
            if engine is None:  # a worker told to stop before it opened anything: nothing to serve
                yield state
                return
            async with endpoint.running(engine, auth_disabled=auth_disabled, stateless=stateless):
                yield state

    app.router.lifespan_context = lifespan
    return endpoint
