"""A small bounded pool of raw psycopg connections for vector searches.

Searches skip SQLAlchemy: each one is a single statement on an autocommit connection, the query
vector bound in pgvector's binary format, `hnsw.ef_search` set at session level only when it
differs from what the connection already has. At most `max_size` connections are open at once;
callers beyond that wait. A connection broken by a server restart is dropped with every idle one
(they died with it) and the search is retried once on a fresh connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from pgvector.psycopg.vector import register_vector_info
from psycopg.pq import TransactionStatus
from psycopg.types import TypeInfo
from sqlalchemy.engine import Engine

from ..errors import BackendUnavailable

T = TypeVar("T")
DEFAULT_MAX_SIZE = 4
DEFAULT_WAIT_S = 30.0
APPLICATION_NAME = "metamedia-search"


class SearchConnection:
    """One autocommit psycopg connection and the session settings it was given."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.settings: dict[str, str] = {}

    def ensure(self, name: str, value: str) -> None:
        """SET `name` for the session unless the connection already has that value."""
        if self.settings.get(name) != value:
            self.conn.execute(f"SET {name} = {value}")  # name and value are ours, never user text
            self.settings[name] = value


class SearchConnections:
    """Bounded pool of search connections to the database of a SQLAlchemy engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_size: int = DEFAULT_MAX_SIZE,
        wait_s: float = DEFAULT_WAIT_S,
        session: dict[str, str] | None = None,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._args, self._kwargs = engine.dialect.create_connect_args(engine.url)
        self._kwargs.setdefault("application_name", APPLICATION_NAME)  # visible in pg_stat_activity
        self.max_size = max_size
        self.wait_s = wait_s
        self.session = dict(session or {})
        self._idle: list[SearchConnection] = []
        self._open = 0
        self._lock = threading.Condition()
        self._closed = False

    def _connect(self) -> SearchConnection:
        conn = psycopg.connect(*self._args, **self._kwargs, autocommit=True)
        try:
            info = TypeInfo.fetch(conn, "vector")
            if info is None:
                raise BackendUnavailable("the pgvector extension is not created in this database")
            register_vector_info(conn, info)
            search = SearchConnection(conn)
            for name, value in self.session.items():
                search.ensure(name, value)
        except BaseException:
            conn.close()
            raise
        return search

    @contextmanager
    def connection(self) -> Iterator[SearchConnection]:
        """Borrow a connection (opening one if fewer than max_size are open), give it back after."""
        search = self._acquire()
        try:
            yield search
        except BaseException:
            if search.conn.broken or search.conn.info.transaction_status != TransactionStatus.IDLE:
                self._discard(search)  # dead, or interrupted mid-statement: never hand it out again
            else:
                self._release(search)
            raise
        self._release(search)

    def run(self, work: Callable[[SearchConnection], T]) -> T:
        """`work` on a pooled connection; once more on a fresh one if the connection was broken.
        BackendUnavailable when the server cannot be reached the second time either."""
        for attempt in (1, 2):
            try:
                with self.connection() as search:
                    return work(search)
            except psycopg.OperationalError as exc:
                if not _is_disconnect(exc):
                    raise
                if attempt == 2:
                    raise BackendUnavailable(f"PostgreSQL is not reachable for searches: {exc}") from exc
                self.drop_idle()
        raise AssertionError("unreachable")  # pragma: no cover

    def drop_idle(self) -> None:
        """Close every idle connection (after a restart they are all dead)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._lock.notify_all()
        for search in idle:
            search.conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.drop_idle()

    @property
    def open_count(self) -> int:
        """Connections open now, idle or borrowed."""
        return self._open

    def _acquire(self) -> SearchConnection:
        with self._lock:
            if self._closed:
                raise BackendUnavailable("the pgvector search connections are closed")
            if not self._lock.wait_for(lambda: self._idle or self._open < self.max_size, self.wait_s):
                raise BackendUnavailable(f"no search connection free after {self.wait_s:g} s")
            if self._idle:
                return self._idle.pop()
            self._open += 1
        try:
            return self._connect()
        except BaseException:
            with self._lock:
                self._open -= 1
                self._lock.notify()
            raise

    def _release(self, search: SearchConnection) -> None:
        with self._lock:
            if not self._closed and not search.conn.closed:
                self._idle.append(search)
                self._lock.notify()
                return
            self._open -= 1
            self._lock.notify()
        search.conn.close()

    def _discard(self, search: SearchConnection) -> None:
        with self._lock:
            self._open -= 1
            self._lock.notify()
        search.conn.close()


def _is_disconnect(exc: psycopg.OperationalError) -> bool:
    """A lost server rather than a bad query: connection failures and administrator shutdowns."""
    return isinstance(exc, psycopg.errors.AdminShutdown | psycopg.errors.CannotConnectNow) or (
        exc.sqlstate is None or exc.sqlstate.startswith("08")
    )
