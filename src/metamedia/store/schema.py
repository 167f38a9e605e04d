"""Catalog tables of the store of record, in SQLAlchemy Core so every backend shares them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("media_type", String(8), nullable=False, default="movie"),
    Column("title", Text, nullable=False),
    Column("original_title", Text),
    Column("overview", Text),
    Column("tagline", Text),
    Column("genres", JSON, nullable=False),
    Column("keywords", JSON, nullable=False),
    Column("release_date", String(10)),
    Column("year", Integer, index=True),
    Column("runtime", Integer),
    Column("vote_average", Float),
    Column("vote_count", Integer),
    Column("popularity", Float),
    Column("language", String(16)),
    Column("poster_path", Text),
    Column("tmdb_id", BigInteger, unique=True),
    Column("imdb_id", String(16), unique=True),
    Column("movielens_id", BigInteger, unique=True),
    Column("companies", JSON),  # production companies; NULL on rows written before revision 0003
    Column("collection", Text),
    Column("countries", JSON),
    Column("source", Text, nullable=False, default=""),
    Column("content_hash", String(64), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# What each source file said about an item; the item row is their deterministic merge.
item_sources = Table(
    "item_sources",
    metadata,
    Column("item_id", Integer, nullable=False, index=True),
    Column("source", String(32), nullable=False),
    Column("origin", String(255), nullable=False),
    Column("data", JSON, nullable=False),
    PrimaryKeyConstraint("item_id", "source", "origin"),
)

# Id-only rows (links, keywords) whose title is not in the catalog yet: attached when it arrives.
orphan_sources = Table(
    "orphan_sources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("origin", String(255), nullable=False),
    Column("tmdb_id", BigInteger, index=True),
    Column("imdb_id", String(16), index=True),
    Column("movielens_id", BigInteger, index=True),
    Column("data", JSON, nullable=False),
)

embedding_cache = Table(
    "embedding_cache",
    metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("model", String(64), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
)

settings_kv = Table(
    "metamedia_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
