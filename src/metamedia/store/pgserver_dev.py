"""A throw-away PostgreSQL 16 + pgvector server from pip (`pgserver`), for tests and benchmarks.

No Docker: `pgserver` (a dev dependency) ships the server binaries. When we run as root (CI),
pgserver runs the server as a `pgserver` system user, so its data dir lives under /tmp (not in
root's home) with the parent opened for that user.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text


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

    def _admin(self, sql: str) -> None:
        engine = create_engine(
            self.admin_url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def create_database(self, name: str) -> str:
        """Create an empty database with pgvector available, and return its URL."""
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pg_ctl(self, *args: str) -> str:
        """Run the bundled pg_ctl on this data dir, as the user that owns the server."""
        # deferred: pgserver is a development-only dependency
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]  # generated at import

        return str(pg_ctl(list(args), pgdata=self.pgdata, user=self.handle.system_user, timeout=60))

    def restart(self) -> None:
        """Fast shutdown (open connections are killed) and start again on the same socket."""
        self.pg_ctl("-w", "-m", "fast", "restart")

    def configure(self, settings: dict[str, str]) -> None:
        """ALTER SYSTEM each setting (e.g. {"shared_buffers": "1GB"}), then restart to apply them."""
        for name, value in settings.items():
            if not name.replace("_", "").isalnum():
                raise ValueError(f"not a setting name: {name!r}")
            self._admin(f"ALTER SYSTEM SET {name} = '{value.replace(chr(39), '')}'")
        self.restart()


def start_pg_server() -> PgServer:
    """Start a throw-away server; raises with the server's own message when it cannot start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI)
        # deferred: pgserver is a development-only dependency
        import pgserver

        base = Path(tempfile.mkdtemp(prefix="metamedia-pg-", dir="/tmp"))
        base.chmod(0o755)  # the `pgserver` system user must reach its data dir when we are root
        pgdata = base / "pgdata"
        handle = pgserver.get_server(pgdata, cleanup_mode="delete")
    return PgServer(handle=handle, pgdata=pgdata, base_dir=base)


def stop_pg_server(server: PgServer) -> None:
    """Stop the server and delete its data dir."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server.handle.cleanup()
    shutil.rmtree(server.base_dir, ignore_errors=True)
