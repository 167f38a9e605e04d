"""Store-of-record tables (SQLAlchemy Core only: portable across SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

collections = Table(
    "vector_collections",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("config", Text, nullable=False),  # CollectionConfig as JSON
    Column("version", BigInteger, nullable=False),  # bumped by every committed write
)

# One row per point id ever written: live rows carry the vector and payload; a delete keeps the
# row with deleted=True and the delete's version so a stale snapshot can replay it.
points = Table(
    "vector_points",
    metadata,
    Column("collection", String(64), primary_key=True),
    Column("point_id", BigInteger, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("vector", LargeBinary, nullable=True),  # little-endian float32, normalised for cosine
    Column("payload", Text, nullable=True),  # JSON object, NULL when empty
    Index("ix_vector_points_version", "collection", "version"),
    Index("ix_vector_points_live", "collection", "deleted"),  # live counts without reading vectors
)
