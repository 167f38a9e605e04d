"""Pure-ASGI middleware (streaming-safe): request ids + access log + metrics, and body size limits."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logging import request_id_var
from .metrics import ApiMetrics

access_log = logging.getLogger("metamedia.access")
# Short and without "_": a pasted API key (mm_<id>_<secret>, 60 characters) can never pass as a request id.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,39}$")


class LoadingGate:
    """While the first-start load runs (app.state.loader not ready), answer 503 with its progress,
    except on the paths that must answer during it (/health, /ready, the web app's pages and files)."""

    def __init__(
        self, app: ASGIApp, open_paths: tuple[str, ...], open_prefixes: tuple[str, ...] = ()
    ) -> None:
        self.app = app
        self.open_paths = open_paths
        self.open_prefixes = open_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loader = getattr(scope["app"].state, "loader", None) if "app" in scope else None
        if (
            scope["type"] != "http"
            or loader is None
            or loader.ready.is_set()
            or scope["path"] in self.open_paths
            or str(scope["path"]).startswith(self.open_prefixes)
        ):
            await self.app(scope, receive, send)
            return
        status = loader.status()
        if status["state"] == "failed":
            error = f"the first load failed ({status.get('error')}); see /ready and the server log"
        else:
            error = f"still loading ({status['state']}); try again shortly"
        body = json.dumps({"error": error, "detail": status})
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"retry-after", b"5")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class RequestContextMiddleware:
    """Gives each request an id (kept from a sane incoming X-Request-ID), logs and times it."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            state = scope.get("state") or {}
            self.metrics.observe_request(scope["method"], template, status, elapsed)
            # The path only, never the query string: that is where a careless client would put a key.
            access_log.info(
                "%s %s %d",
                scope["method"],
                template,
                status,
                extra={
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "key_id": state.get("key_id"),
                    "client": (scope.get("client") or ("?", 0))[0],
                },
            )
            request_id_var.reset(token)


class BodySizeLimitMiddleware:
    """413 for bodies over the limit, by Content-Length and while streaming (chunked uploads).

    `limit_for(path)` lets upload routes allow more than the default.
    """

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {"error": f"request body larger than {limit} bytes", "detail": {"limit": limit}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await self._refuse(send, limit)
                return
            if int(declared) > limit:
                await self._refuse(send, limit)
                return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now and tell the app the client left: whatever it sends next is dropped.
                    refused = True
                    await self._refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)
