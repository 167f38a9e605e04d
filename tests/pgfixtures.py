"""A real PostgreSQL 16 + pgvector server per test session, started from pip with `pgserver`.

The server itself is started by `metamedia.store.pgserver_dev` (shared with bench/pg_bench.py).
If the server cannot start, PostgreSQL tests FAIL with the reason: CI must prove the backend,
never skip it silently.

Import the fixtures in tests/conftest.py: `from tests.pgfixtures import pg_server, pg_url  # noqa: F401`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from metamedia.store.pgserver_dev import PgServer, start_pg_server, stop_pg_server

__all__ = ["PgServer", "pg_server", "pg_url", "start_pg_server", "stop_pg_server"]

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the whole session, removed at the end."""
    try:
        server = start_pg_server()
    except Exception as exc:  # any failure to start is a test failure, with its reason
        pytest.fail(f"PostgreSQL (pgserver) could not start: {type(exc).__name__}: {exc}", pytrace=False)
    try:
        yield server
    finally:
        stop_pg_server(server)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty database on the session server, dropped after the test."""
    name = f"mm_test_{next(_database_numbers)}"
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)
