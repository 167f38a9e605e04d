"""Small ASGI helpers shared by the HTTP edges (the API's guards and the MCP endpoint)."""

from __future__ import annotations

from starlette.types import Message, Receive


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A receive callable that yields an already-read request body once, then defers to `receive`
    (so a middleware can read and check a body and still hand it on whole)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
