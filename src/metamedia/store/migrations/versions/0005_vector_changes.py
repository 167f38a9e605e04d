"""The change log of vector collections (`vector_changes`), followed by Ray index shard replicas.

One row per write to a pgvector collection, numbered (`seq`, bigserial) in commit order and
written in the write's own transaction (`metamedia.vectors_pg.changes`). Created on SQLite too,
where it stays empty, like `pgvector_collections`: one schema for both backends. A table a
running deployment already created is adopted.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLE = "vector_changes"
INDEX = "vector_changes_collection_seq"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if TABLE not in inspector.get_table_names():
        op.create_table(
            TABLE,
            sa.Column("seq", sa.BigInteger(), autoincrement=True, nullable=False),
            sa.Column("collection", sa.String(64), nullable=False),
            sa.Column("op", sa.String(8), nullable=False),
            sa.Column("ids", sa.JSON(), nullable=False),
            sa.PrimaryKeyConstraint("seq"),
        )
    if INDEX not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(TABLE)}:
        op.create_index(INDEX, TABLE, ["collection", "seq"])


def downgrade() -> None:
    op.drop_table(TABLE)
