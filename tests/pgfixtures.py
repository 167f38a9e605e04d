"""A real PostgreSQL 16 + pgvector server per test session, started from pip with `pgserver`.

No Docker: `pgserver` ships the server binaries. When the tests run as root (CI), pgserver runs
the server as a `pgserver` system user, so its data dir lives under /tmp (not in root's home)
with the parent opened for that user. If the server cannot start, PostgreSQL tests FAIL with
the reason: CI must prove the backend, never skip it silently.

Import the fixtures in tests/conftest.py: `from tests.pgfixtures import pg_server, pg_url  # noqa: F401`.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

_database_numbers = itertools.count(1)


@dataclass
class PgServer:
    """A running pgserver instance: its handle, data dir and admin URL (Unix socket)."""

    handle: Any
    pgdata: Path
    base_dir: Path

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        """postgresql:// URL of one database on this server, over the Unix socket."""
        return str(self.handle.get_uri(database))

    def create_database(self, name: str) -> str:
        """Create an empty database with pgvector available, and return its URL."""
        engine = create_engine(
            self.admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def drop_database(self, name: str) -> None:
        engine = create_engine(
            self.admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    def pg_ctl(self, *args: str) -> str:
        """Run the bundled pg_ctl on this data dir, as the user that owns the server."""
        from pgserver._commands import pg_ctl

        return str(pg_ctl(list(args), pgdata=self.pgdata, user=self.handle.system_user, timeout=60))

    def restart(self) -> None:
        """Fast shutdown (open connections are killed) and start again on the same socket."""
        self.pg_ctl("-w", "-m", "fast", "restart")


def start_pg_server() -> PgServer:
    """Start a throw-away server; raises with the server's own message when it cannot start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI)
        import pgserver

        base = Path(tempfile.mkdtemp(prefix="metamedia-pg-", dir="/tmp"))
        base.chmod(0o755)  # the `pgserver` system user must reach its data dir when we are root
        pgdata = base / "pgdata"
        handle = pgserver.get_server(pgdata, cleanup_mode="delete")
    return PgServer(handle=handle, pgdata=pgdata, base_dir=base)


def stop_pg_server(server: PgServer) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server.handle.cleanup()
    shutil.rmtree(server.base_dir, ignore_errors=True)


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
