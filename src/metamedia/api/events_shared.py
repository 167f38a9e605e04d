"""The event bus of one server process among several: publish into the shared log, tail it for `/events`.

Every process appends its events to one `EventLog` (`coord/events_log.py`) that hands out global ids.
While a process has `/events` subscribers, one thread of it reads the log's new rows every
`poll_interval` seconds (at once after a local publish) into a local copy of the log's window and
wakes the subscribers; they read that copy in id order, so each sees every event once, in the global
order, whichever process published it. A reconnecting client's Last-Event-ID is a global id, so
resuming works on any process. With no subscribers, nothing polls.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from typing import Any

from ..coord.events_log import READ_LIMIT, EventLog
from .events import Event, EventBus, OnPublish

log = logging.getLogger("metamedia.api.events")

POLL_INTERVAL_S = 0.05


class SharedEventBus(EventBus):
    """An `EventBus` whose history is the shared log of every server process on one data directory."""

    def __init__(
        self,
        events_log: EventLog,
        *,
        on_publish: OnPublish | None = None,
        poll_interval: float = POLL_INTERVAL_S,
    ) -> None:
        super().__init__(events_log.capacity, on_publish=on_publish)
        self.log = events_log
        self.poll_interval = poll_interval
        self._cursor = 0  # the newest log id copied into the buffer
        self._trimmed = 0  # the log's largest dropped id as of the last read
        self._read_lock = threading.Lock()
        self._poke = threading.Event()
        self._subscribers = 0
        self._poller: threading.Thread | None = None
        self._closed = False

    @property
    def last_id(self) -> int:
        return self.log.last_id()

    def publish(self, kind: str, data: dict[str, Any] | None = None) -> Event:
        """Append to the shared log. Never raises: the write it announces has already committed, and a
        failed request would make its client retry it; an event the log refused is logged and dropped
        (id 0), and subscribers learn nothing of it."""
        try:
            logged = self.log.append(kind, dict(data or {}))
        except sqlite3.Error:
            log.exception("the shared event log refused a %s event; it was dropped", kind)
            return Event(0, kind, dict(data or {}))
        event = Event(logged.id, logged.kind, logged.data, logged.ts)
        # Subscribers get it through the log, after every event with a smaller id: never out of order.
        self._poke.set()
        if self._on_publish is not None:
            self._on_publish(event)
        return event

    def refresh(self) -> int:
        """Copy the log's new events into the buffer and wake subscribers; returns how many came."""
        added = 0
        with self._read_lock:
            while True:
                rows, trimmed = self.log.read_after(self._cursor)
                with self._lock:
                    self._trimmed = trimmed
                    for row in rows:
                        self._buffer.append(Event(row.id, row.kind, row.data, row.ts))
                    if rows:
                        self._cursor = rows[-1].id
                added += len(rows)
                if len(rows) < READ_LIMIT:
                    break
        if added:
            self._wake()
        return added

    def since(self, last_id: int | None) -> tuple[list[Event], bool]:
        if self._poller is None:  # nobody tails the log now: read it first
            self.refresh()
        with self._lock:
            events = list(self._buffer)
            trimmed = self._trimmed
        if last_id is None:
            return [], False
        return [e for e in events if e.id > last_id], last_id < trimmed

    def _head(self) -> int:
        return self._cursor

    async def _catch_up(self) -> None:
        await asyncio.to_thread(self.refresh)

    def _subscriber_added(self) -> None:
        with self._lock:
            self._subscribers += 1
            if self._poller is None and not self._closed:
                self._poller = threading.Thread(target=self._poll, name="metamedia-events-tail", daemon=True)
                self._poller.start()

    def _subscriber_removed(self) -> None:
        with self._lock:
            self._subscribers -= 1
        self._poke.set()  # the poller notices it has nobody left to serve

    def _poll(self) -> None:
        while True:
            self._poke.wait(self.poll_interval)
            self._poke.clear()
            with self._lock:
                if self._subscribers <= 0 or self._closed:
                    self._poller = None  # decided under the lock: a new subscriber starts a new poller
                    return
            try:
                self.refresh()
            except Exception:  # a locked or damaged file must not kill the stream: try again later
                log.exception("reading the shared event log failed")

    def close(self) -> None:
        """Stop tailing and close the log (a later subscription opens both again)."""
        with self._lock:
            self._closed = True
            poller = self._poller
        self._poke.set()
        if poller is not None:
            poller.join(5)
        with self._lock:
            self._closed = False
        self.log.close()
