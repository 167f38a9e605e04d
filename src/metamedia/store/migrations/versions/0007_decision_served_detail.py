"""bandit_decisions.served_detail: each served item's score and the memory strategies that moved it.

Kept in the decision log instead of the serving process's memory, so a skip or a watch that reaches
another server process (`metamedia serve --workers N`) still teaches agent memory with the served
score and the strategies to credit.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLE = "bandit_decisions"
COLUMN = "served_detail"


def upgrade() -> None:
    if COLUMN not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns(TABLE)}:
        op.add_column(TABLE, sa.Column(COLUMN, sa.JSON(), nullable=True))  # no table copy, also on SQLite


def downgrade() -> None:
    op.drop_column(TABLE, COLUMN)  # SQLite >= 3.35 drops a column in place (bandit_outcomes keeps its key)
