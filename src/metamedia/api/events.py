"""An in-process event bus and `GET /events`: Server-Sent Events, resumable with Last-Event-ID.

Any layer publishes with ``app.state.events.publish(kind, data)`` (thread-safe, never blocks).
The last `capacity` events stay in a ring buffer; a client reconnecting with `Last-Event-ID`
gets every buffered event after that id first. If its id is older than the buffer, it gets a
`reset` event first (events were lost: reload state), then the buffer. Event ids start from the
bus's creation time in milliseconds, so ids keep growing across server restarts.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from .auth import Principal, require
from .keys import KeyStore

MAX_KINDS = 20


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    data: dict[str, Any]
    ts: float = field(default_factory=time.time)


OnPublish = Callable[[Event], None]


class EventBus:
    """Bounded history of events plus wake-ups for waiting subscribers (any thread may publish)."""

    def __init__(self, capacity: int = 1000, *, on_publish: OnPublish | None = None) -> None:
        self._buffer: deque[Event] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._next_id = int(time.time() * 1000)
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._on_publish = on_publish

    @property
    def last_id(self) -> int:
        with self._lock:
            return self._next_id - 1

    def publish(self, kind: str, data: dict[str, Any] | None = None) -> Event:
        with self._lock:
            event = Event(self._next_id, kind, dict(data or {}))
            self._next_id += 1
            self._buffer.append(event)
        self._wake()
        if self._on_publish is not None:
            self._on_publish(event)
        return event

    def _wake(self) -> None:
        """Tell every waiting subscriber to look again (from any thread)."""
        with self._lock:
            waiters = list(self._waiters)
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # that subscriber's loop has closed; it is gone
                pass

    def _head(self) -> int:
        """The newest id this bus knows (caller holds the lock): where a fresh subscription starts."""
        return self._next_id - 1

    def _subscriber_added(self) -> None:
        """A subscription opens (the shared bus starts tailing the log here)."""

    def _subscriber_removed(self) -> None:
        """A subscription closed."""

    async def _catch_up(self) -> None:
        """Bring the buffer up to date before a subscription reads it (the shared bus reads the log)."""

    def close(self) -> None:
        """Release what the bus holds (nothing for the in-process bus)."""

    def since(self, last_id: int | None) -> tuple[list[Event], bool]:
        """Buffered events after `last_id`, and whether some were lost (the id fell out of the buffer)."""
        with self._lock:
            events = list(self._buffer)
        if last_id is None:
            return [], False
        lost = bool(events) and last_id < events[0].id - 1
        return [e for e in events if e.id > last_id], lost

    async def subscribe(
        self,
        last_id: int | None,
        *,
        still_allowed: Callable[[], bool] | None = None,
        check_every: float = 5.0,
    ) -> AsyncIterator[Event | None]:
        """Events after `last_id` (replayed, then live); yields None first when some were lost.

        With `still_allowed`, it is asked (in a worker thread) at least every `check_every` seconds
        and before each batch; the stream ends as soon as it answers False (a revoked key).
        """
        flag = asyncio.Event()
        waiter = (asyncio.get_running_loop(), flag)
        self._subscriber_added()
        try:
            await self._catch_up()
        except BaseException:
            self._subscriber_removed()
            raise
        with self._lock:
            self._waiters.add(waiter)
            cursor = last_id if last_id is not None else self._head()
        checked = time.monotonic()

        async def allowed() -> bool:
            nonlocal checked
            checked = time.monotonic()
            return still_allowed is None or await asyncio.to_thread(still_allowed)

        try:
            pending, lost = self.since(cursor)
            if lost:
                yield None
            while True:
                if pending and still_allowed is not None and time.monotonic() - checked >= check_every / 2:
                    if not await allowed():
                        return
                for event in pending:
                    cursor = event.id
                    yield event
                flag.clear()
                pending, _ = self.since(cursor)
                while not pending:
                    try:
                        await asyncio.wait_for(flag.wait(), check_every if still_allowed else None)
                    except TimeoutError:
                        pass
                    if still_allowed is not None and time.monotonic() - checked >= check_every:
                        if not await allowed():
                            return
                    flag.clear()
                    pending, _ = self.since(cursor)
        finally:
            with self._lock:
                self._waiters.discard(waiter)
            self._subscriber_removed()


router = APIRouter(tags=["events"])


def _parse_last_id(raw: str | None) -> int | None:
    if raw is None or not raw.strip().isdigit() or len(raw.strip()) > 19:
        return None
    return int(raw.strip())


def _visible(event: Event, principal: Principal, kinds: set[str]) -> bool:
    if kinds and event.kind not in kinds:
        return False
    owner = event.data.get("user_id")
    return principal.user_id is None or owner is None or str(owner) == principal.user_id


@router.get(
    "/events",
    summary="Server-Sent Events: interactions, strategy evolutions, learner runs, catalog writes",
    response_class=EventSourceResponse,
)
async def events(
    request: Request,
    principal: Annotated[Principal, Depends(require("read"))],
    kind: Annotated[
        list[str] | None, Query(max_length=MAX_KINDS, description="Only these kinds (repeat)")
    ] = None,
    last_event_id: Annotated[
        str | None, Header(max_length=32, description="Resume after this event id")
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=2**62, description="Resume after this id (for clients without headers)")
    ] = None,
) -> EventSourceResponse:
    bus: EventBus = request.app.state.events
    heartbeat = request.app.state.settings.events_heartbeat_s
    resume = _parse_last_id(last_event_id)
    if resume is None:
        resume = after
    wanted = {k[:64] for k in kind or []}

    key_id = principal.key_id
    keys: KeyStore | None = getattr(request.app.state, "keys", None)
    still_allowed = (lambda: keys.is_active(key_id)) if key_id is not None and keys is not None else None
    recheck = min(heartbeat, 5.0)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        # The key is checked again while the stream is open: revoking it ends the stream.
        async for event in bus.subscribe(resume, still_allowed=still_allowed, check_every=recheck):
            if event is None:
                yield ServerSentEvent(
                    data=json.dumps({"reason": "events were lost; reload state"}), event="reset"
                )
                continue
            if _visible(event, principal, wanted):
                body = json.dumps({"kind": event.kind, "ts": event.ts, "data": event.data}, default=str)
                yield ServerSentEvent(data=body, event=event.kind, id=str(event.id))

    return EventSourceResponse(stream(), ping=int(max(1, heartbeat)))
