"""Restart PostgreSQL in the middle of a stream of writes: no acknowledged write is lost and the
store recovers by itself (pooled connections are pre-pinged, interrupted writes retried)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.exc import DBAPIError

from metamedia.store.postgres import PgCatalogStore, open_pg_store
from tests.pgfixtures import PgServer, start_pg_server, stop_pg_server

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_server() -> Iterator[PgServer]:
    """A server of its own: restarting it must not disturb other tests' databases."""
    try:
        server = start_pg_server()
    except Exception as exc:
        pytest.fail(f"PostgreSQL (pgserver) could not start: {exc}", pytrace=False)
    yield server
    stop_pg_server(server)


def test_restart_mid_stream_loses_no_acknowledged_write(own_server: PgServer) -> None:
    store: PgCatalogStore = open_pg_store(own_server.url("postgres"))
    acknowledged: list[str] = []
    failed: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            key = f"k{n}"
            try:
                store.set_meta(key, str(n))
                acknowledged.append(key)
            except DBAPIError:
                failed.append(key)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.5)
    before_restart = len(acknowledged)
    own_server.restart()
    time.sleep(1.0)
    stop.set()
    thread.join(timeout=60)

    assert before_restart > 0
    assert len(acknowledged) > before_restart  # writes resumed after the restart, same store object
    missing = [k for k in acknowledged if store.get_meta(k) is None]
    assert missing == []
    assert failed == []  # interrupted idempotent writes were retried, not surfaced
    store.close()
