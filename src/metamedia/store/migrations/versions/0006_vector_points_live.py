"""An index on vector_points (collection, deleted): counting a collection's live points reads the
index instead of every row with its vector (a vector-store reopen checks that count).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLE = "vector_points"
INDEX = "ix_vector_points_live"


def upgrade() -> None:
    if INDEX not in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(TABLE)}:
        op.create_index(INDEX, TABLE, ["collection", "deleted"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
