"""Generation numbers in the store of record: the one freshness rule of every in-memory view.

A writer bumps a named counter (`catalog`, `memory.strategies`, `memory.episodes`) in the same
transaction as its change; a view (the recommender's catalog snapshot, memory's strategy and
episode matrices) remembers the number it was built at and rebuilds when the stored number moved
on — whichever process made the change. The counters live in the `metamedia_meta` table.
"""

from __future__ import annotations

from sqlalchemy import Connection, Integer, String, cast, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from .schema import settings_kv

CATALOG = "catalog"
PREFIX = "generation:"


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

    def generation(self) -> int:
        with self.db.connect() as conn:
            return read_generation(conn, self.name)

    def bump(self) -> int:
        """Bump in a transaction of its own (for changes that are not SQL rows, like an index write)."""
        for _attempt in range(3):
            try:
                with self.db.begin() as conn:
                    return bump_generation(conn, self.name)
            except sa_exc.IntegrityError:
                continue  # another process inserted the first row meanwhile: increment that one
        raise sa_exc.InvalidRequestError(f"could not move generation {self.name!r} on")
