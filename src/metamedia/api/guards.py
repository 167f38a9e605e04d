"""Pure-ASGI guards that run before any route: body bounds and timeouts, and the demo's origin checks.

`RequestBodyGuard` gives every request body an idle timeout (a client that declares a body and never
sends it gets 408) and parses every JSON body once with metamedia's bounds (depth, finite numbers:
see `metamedia.jsonsafe`), answering 422 before a route, a dependency or the MCP transport sees it.

`LoopbackGuard` protects the demo (authentication off, loopback bind) from the web pages its user
visits: a foreign `Host` (DNS rebinding) or a foreign `Origin` is refused, and so is any unsafe
method sent as a "simple" cross-site request (text/plain, form encodings), which browsers send
without asking first.
"""

from __future__ import annotations

import asyncio
import json
from email.message import Message as MimeMessage
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..asgiutil import replay_body
from ..jsonsafe import JsonLimitExceeded, loads
from .auth import is_loopback

JSONRPC_PATHS = ("/mcp",)
SIMPLE_TYPES = frozenset({"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _answer(send: Send, status: int, payload: dict[str, object]) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """Our JSON error body, or a JSON-RPC error on the MCP endpoint."""
    if scope.get("path") in JSONRPC_PATHS:
        code = -32600 if status in (400, 422) else -32003
        await _answer(
            send, status, {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
        )
    else:
        await _answer(send, status, {"error": message, "detail": None})


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # FastAPI parses a body without a content type as JSON
    mime = MimeMessage()
    mime["content-type"] = content_type
    subtype = mime.get_content_subtype()
    return mime.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class RequestBodyGuard:
    """Idle timeout while a body is read; JSON bodies parsed with bounds and replayed to the app."""

    def __init__(self, app: ASGIApp, *, timeout: float, skip_json: tuple[str, ...] = ()) -> None:
        self.app = app
        self.timeout = timeout
        self.skip_json = skip_json

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        complete = timed_out = False

        async def timed_receive() -> Message:
            nonlocal complete, timed_out
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                # Answer now and tell the app the client left: it must not answer too.
                complete = timed_out = True
                await refuse(scope, send, 408, f"request body not received within {self.timeout:g} s")
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def guarded_send(message: Message) -> None:
            if not timed_out:
                await send(message)

        wants_json = (
            scope["method"] in UNSAFE
            and scope["path"] not in self.skip_json
            and _is_json(_header(scope, b"content-type"))
        )
        if not wants_json:
            await self.app(scope, timed_receive, guarded_send)
            return
        chunks: list[bytes] = []
        while True:
            message = await timed_receive()
            if message["type"] != "http.request":
                return  # the client left, or a limit answered already
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.strip():
            try:
                loads(body)
            except JsonLimitExceeded as exc:
                await refuse(scope, send, 422, exc.message)
                return
            except (ValueError, UnicodeDecodeError):
                pass  # malformed JSON: the route (or the MCP transport) answers it in its own words
        await self.app(scope, replay_body(body, receive), guarded_send)


def _origin_is_local(origin: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and is_loopback(parts.hostname or "")


def _host_is_local(host: str) -> bool:
    name = urlsplit(f"//{host}").hostname or ""
    return is_loopback(name)


class LoopbackGuard:
    """For the demo (auth off): refuse foreign Host and Origin, and unsafe simple cross-site requests."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = _header(scope, b"host")
        if host is not None and not _host_is_local(host):
            await refuse(
                scope, send, 421, "this server answers only to a loopback host name (authentication is off)"
            )
            return
        origin = _header(scope, b"origin")
        if origin is not None and not _origin_is_local(origin):
            await refuse(scope, send, 403, "cross-origin requests are refused while authentication is off")
            return
        if scope.get("method") in UNSAFE and origin is None:
            kind = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            site = (_header(scope, b"sec-fetch-site") or "").lower()
            if kind in SIMPLE_TYPES or site == "cross-site":
                await refuse(
                    scope, send, 403,
                    f"{scope['method']} with content type {kind!r} is refused while authentication is off; "
                    "send JSON (application/json) or an upload type such as application/x-ndjson",
                )  # fmt: skip
                return
        await self.app(scope, receive, send)
