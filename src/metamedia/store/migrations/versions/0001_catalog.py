"""Catalog tables: items, their source rows, orphan id-only rows, the embedding cache, metadata.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("media_type", sa.String(8), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("original_title", sa.Text),
        sa.Column("overview", sa.Text),
        sa.Column("tagline", sa.Text),
        sa.Column("genres", sa.JSON, nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
        sa.Column("release_date", sa.String(10)),
        sa.Column("year", sa.Integer),
        sa.Column("runtime", sa.Integer),
        sa.Column("vote_average", sa.Float),
        sa.Column("vote_count", sa.Integer),
        sa.Column("popularity", sa.Float),
        sa.Column("language", sa.String(16)),
        sa.Column("poster_path", sa.Text),
        sa.Column("tmdb_id", sa.BigInteger, unique=True),
        sa.Column("imdb_id", sa.String(16), unique=True),
        sa.Column("movielens_id", sa.BigInteger, unique=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_items_year", "items", ["year"])
    op.create_table(
        "item_sources",
        sa.Column("item_id", sa.Integer, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("item_id", "source", "origin"),
    )
    op.create_index("ix_item_sources_item_id", "item_sources", ["item_id"])
    op.create_table(
        "orphan_sources",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("origin", sa.String(255), nullable=False),
        sa.Column("tmdb_id", sa.BigInteger),
        sa.Column("imdb_id", sa.String(16)),
        sa.Column("movielens_id", sa.BigInteger),
        sa.Column("data", sa.JSON, nullable=False),
    )
    for key in ("tmdb_id", "imdb_id", "movielens_id"):
        op.create_index(f"ix_orphan_sources_{key}", "orphan_sources", [key])
    op.create_table(
        "embedding_cache",
        sa.Column("content_hash", sa.String(64), primary_key=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "metamedia_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("metamedia_meta", "embedding_cache", "orphan_sources", "item_sources", "items"):
        op.drop_table(table)
