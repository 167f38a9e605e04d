"""Alembic environment: runs revisions on the engine handed over in `config.attributes`.

On PostgreSQL a transaction-scoped advisory lock serialises processes migrating the same database:
the second one waits, then finds the revisions applied and runs none.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from metamedia.store.migrations import VERSION_TABLE

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('metamedia_schema_migrations'))"))
    context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
