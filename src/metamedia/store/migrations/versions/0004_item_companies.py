"""Production companies, collection and countries on items, and in the lexical index.

`items` gains `companies` (JSON list), `collection` (text) and `countries` (JSON list), NULL on
existing rows until they are ingested again. The lexical index of revision 0003 is rebuilt over the
two new searchable fields (companies, collection):

SQLite: an FTS5 table `items_fts` with external content over `items` (no second copy of the text),
kept in step by AFTER INSERT/UPDATE/DELETE triggers, so a write and its index entry commit in the
same transaction; back-filled with FTS5's 'rebuild'.
PostgreSQL: a stored generated column `items.search_document` (tsvector, English configuration,
weight A title, B original title and keywords, C genres and tagline, D overview) with a GIN index;
PostgreSQL computes it in every INSERT/UPDATE and fills it for existing rows when it is added.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Literal statements (no string building): the column list is the one in store/lexical.py.
_SQLITE_UP = [
    "DROP TRIGGER items_fts_update",
    "DROP TRIGGER items_fts_delete",
    "DROP TRIGGER items_fts_insert",
    "DROP TABLE items_fts",
    "CREATE VIRTUAL TABLE items_fts USING fts5(title, original_title, keywords, genres, tagline, overview, companies, "
    "collection, content='items', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, title, original_title, keywords, genres, tagline, overview, companies, collection) "
    "VALUES (new.id, new.title, new.original_title, new.keywords, new.genres, new.tagline, new.overview, new.companies, new.collection); END",
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, original_title, keywords, genres, tagline, overview, companies, collection) "
    "VALUES ('delete', old.id, old.title, old.original_title, old.keywords, old.genres, old.tagline, old.overview, old.companies, old.collection); END",
    "CREATE TRIGGER items_fts_update AFTER UPDATE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, original_title, keywords, genres, tagline, overview, companies, collection) "
    "VALUES ('delete', old.id, old.title, old.original_title, old.keywords, old.genres, old.tagline, old.overview, old.companies, old.collection); "
    "INSERT INTO items_fts(rowid, title, original_title, keywords, genres, tagline, overview, companies, collection) "
    "VALUES (new.id, new.title, new.original_title, new.keywords, new.genres, new.tagline, new.overview, new.companies, new.collection); END",
    "INSERT INTO items_fts(items_fts) VALUES ('rebuild')",
]
_SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS items_fts_update",
    "DROP TRIGGER IF EXISTS items_fts_delete",
    "DROP TRIGGER IF EXISTS items_fts_insert",
    "DROP TABLE IF EXISTS items_fts",
]

_PG_DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(original_title, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(keywords::text, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(genres::text, '')), 'C') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(tagline, '')), 'C') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(overview, '')), 'D') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(companies::text, '')), 'C') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(collection, '')), 'B')"
)
_PG_UP = [
    "DROP INDEX ix_items_search_document",
    "ALTER TABLE items DROP COLUMN search_document",
    f"ALTER TABLE items ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({_PG_DOCUMENT}) STORED",
    "CREATE INDEX ix_items_search_document ON items USING gin (search_document)",
]
_PG_DOWN = [
    "DROP INDEX IF EXISTS ix_items_search_document",
    "ALTER TABLE items DROP COLUMN IF EXISTS search_document",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # A store made by `create_all` (adopted at revision 0001) may have the columns already.
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("items")}
    for column in (
        sa.Column("companies", sa.JSON(), nullable=True),
        sa.Column("collection", sa.Text(), nullable=True),
        sa.Column("countries", sa.JSON(), nullable=True),
    ):
        if column.name not in have:
            op.add_column("items", column)
    for statement in _PG_UP if dialect == "postgresql" else _SQLITE_UP if dialect == "sqlite" else []:
        op.execute(statement)


def downgrade() -> None:
    """Back to revision 0003: the new columns dropped, the lexical index rebuilt over the old fields."""
    dialect = op.get_bind().dialect.name
    for statement in _PG_DOWN if dialect == "postgresql" else _SQLITE_DOWN if dialect == "sqlite" else []:
        op.execute(statement)
    for column in ("countries", "collection", "companies"):
        op.execute(f"ALTER TABLE items DROP COLUMN {column}")  # noqa: S608 - fixed names
    previous = Path(__file__).with_name("0003_lexical.py")
    spec = importlib.util.spec_from_file_location("metamedia_revision_0003", previous)
    if spec is None or spec.loader is None:  # pragma: no cover - the file ships beside this one
        raise RuntimeError(f"cannot load {previous}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.upgrade()
