"""Generation numbers in the store of record: the one freshness rule of every in-memory view.

A writer bumps a named counter (`catalog`, `memory.strategies`, `memory.episodes`) in the same
transaction as its change; a view (the recommender's catalog snapshot, memory's strategy and
episode matrices) remembers the number it was built at and rebuilds when the stored number moved
on — whichever process made the change. The counters live in the `metamedia_meta` table.

Reading a counter is a SQL round trip (0.1-0.2 ms of CPU on SQLite), paid by every search (the item
cache) and every recommendation. `Generation.watch(beacon)` gates it on the data directory's change
beacon (coord/beacon.py, bumped after the commit of every write that bumps the counter): the counter
is read again only when the beacon moved since the last read, or that read is older than
`MAX_AGE_S` (a writer that does not know the beacon, such as a restore into a live database, is seen
within that time). The engine watches the catalog counter only on SQLite, whose writers all share a
machine and so a beacon; PostgreSQL servers on several machines keep reading the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Connection, Integer, String, cast, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from .schema import settings_kv

CATALOG = "catalog"
PREFIX = "generation:"
MAX_AGE_S = 1.0  # a watched counter is read again at least this often, beacon or not


def read_generation(conn: Connection, name: str) -> int:
    """The counter's current value (0 before the first bump)."""
    value = conn.execute(select(settings_kv.c.value).where(settings_kv.c.key == PREFIX + name)).scalar()
    return int(value) if value is not None else 0


def bump_generation(conn: Connection, name: str) -> int:
    """Move the counter on by one inside the caller's transaction; returns the new value.

    One UPDATE ... SET value = value + 1, so concurrent writers (threads or processes) never lose
    an increment. The first bump inserts the row; if another writer inserted it meanwhile the
    caller's transaction fails with IntegrityError and may be retried."""
    key = settings_kv.c.key == PREFIX + name
    incremented = cast(cast(settings_kv.c.value, Integer) + 1, String)
    if conn.execute(update(settings_kv).where(key).values(value=incremented)).rowcount == 0:
        conn.execute(insert(settings_kv).values(key=PREFIX + name, value="1"))
    return read_generation(conn, name)


class Generation:
    """A `ChangeFeed` over one named counter of the store of record."""

    def __init__(self, db: Engine, name: str) -> None:
        self.db = db
        self.name = name
        self.max_age_s = MAX_AGE_S
        self._beacon: Callable[[], int] | None = None
        self._known: tuple[int, int, float] | None = None  # (beacon value, counter, read at), watched

    def watch(self, beacon: Callable[[], int]) -> None:
        """Read the counter again only when `beacon()` moved (or `max_age_s` passed) since the last
        read. Every writer of this counter must bump the beacon after its commit."""
        self._beacon = beacon
        self._known = None

    def generation(self) -> int:
        beacon = self._beacon
        if beacon is None:
            with self.db.connect() as conn:
                return read_generation(conn, self.name)
        seen = beacon()  # before the SQL read: a commit after it moves the beacon past `seen`
        known = self._known
        now = time.monotonic()
        if known is not None and known[0] == seen and now - known[2] < self.max_age_s:
            return known[1]
        with self.db.connect() as conn:
            value = read_generation(conn, self.name)
        self._known = (seen, value, now)
        return value

    def bump(self) -> int:
        """Bump in a transaction of its own (for changes that are not SQL rows, like an index write)."""
        for _attempt in range(3):
            try:
                with self.db.begin() as conn:
                    value = bump_generation(conn, self.name)
                self._known = None  # this process reads its own write at once, beacon bumped or not
                return value
            except sa_exc.IntegrityError:
                continue  # another process inserted the first row meanwhile: increment that one
        raise sa_exc.InvalidRequestError(f"could not move generation {self.name!r} on")
