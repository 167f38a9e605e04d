"""Schema migrations of the store of record (Alembic), run programmatically on any backend.

Every static table metamedia keeps (catalog, vectors, users and interactions, bandit, agent memory,
API keys) is created by these revisions; each layer calls `upgrade_schema(engine)` when it opens,
which costs one small query once the database is at the newest revision.

A database created before migrations existed (by `metadata.create_all`) is recognised by its
`items` table and stamped at the baseline revision first, so its data is kept and only later
revisions run; revision 0002 adopts the other layers' tables such databases already hold.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent
VERSION_TABLE = "metamedia_schema_version"
BASELINE = "0001"
# Alembic's `op` and `context` are process globals: one migration runs at a time in a process.
_migration_lock = threading.Lock()


def alembic_config(engine: Engine) -> Config:
    """An in-memory Alembic config pointing at the packaged revisions (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


@cache
def head_revision() -> str:
    """The newest revision shipped with this version of metamedia."""
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("no schema migrations found")
    return head


@cache
def newest_revision_file() -> str:
    """The revision id of the highest-numbered file in versions/ ("0005" for 0005_*.py).

    Revisions form one numbered chain (a test checks this equals `head_revision()`), so a database
    at this revision is at head, and `upgrade_schema` can say so without loading every revision
    script (which costs ~0.1 s in a fresh process: most of a vector-store reopen).
    """
    return max(p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, None when it was never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade every metamedia table in the database behind `engine` (idempotent).

    Returns after one query when the database is already at `revision`; concurrent callers in
    threads of one process run the migration once, the others find it done.
    """
    if revision == "head" and current_revision(engine) == newest_revision_file():
        return
    target = head_revision() if revision == "head" else revision
    if current_revision(engine) == target:
        return
    with _migration_lock:
        if current_revision(engine) == target:
            return
        cfg = alembic_config(engine)
        tables = set(inspect(engine).get_table_names())
        if VERSION_TABLE not in tables and "items" in tables:
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, revision)


def downgrade_schema(engine: Engine, revision: str) -> None:
    """Undo revisions down to `revision` (their tables and rows are dropped)."""
    with _migration_lock:
        command.downgrade(alembic_config(engine), revision)
