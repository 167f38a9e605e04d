"""Alembic environment: runs revisions on the engine handed over in `config.attributes`."""

from __future__ import annotations

from alembic import context

from metamedia.store.migrations import VERSION_TABLE

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
