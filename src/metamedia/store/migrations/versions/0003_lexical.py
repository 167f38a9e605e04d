"""Lexical (full-text) index of the catalog items, in the store of record (see store/lexical.py).

SQLite: an FTS5 table `items_fts` with external content over `items` (no second copy of the text),
kept in step by AFTER INSERT/UPDATE/DELETE triggers, so a write and its index entry commit in the
same transaction; back-filled with FTS5's 'rebuild'.
PostgreSQL: a stored generated column `items.search_document` (tsvector, English configuration,
weight A title, B original title and keywords, C genres and tagline, D overview) with a GIN index;
PostgreSQL computes it in every INSERT/UPDATE and fills it for existing rows when it is added.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Literal statements (no string building): the column list is the one in store/lexical.py.
_SQLITE_UP = [
    "CREATE VIRTUAL TABLE items_fts USING fts5(title, original_title, keywords, genres, tagline, overview, "
    "content='items', content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
    "INSERT INTO items_fts(rowid, title, original_title, keywords, genres, tagline, overview) "
    "VALUES (new.id, new.title, new.original_title, new.keywords, new.genres, new.tagline, new.overview); END",
    "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, original_title, keywords, genres, tagline, overview) "
    "VALUES ('delete', old.id, old.title, old.original_title, old.keywords, old.genres, old.tagline, old.overview); END",
    "CREATE TRIGGER items_fts_update AFTER UPDATE ON items BEGIN "
    "INSERT INTO items_fts(items_fts, rowid, title, original_title, keywords, genres, tagline, overview) "
    "VALUES ('delete', old.id, old.title, old.original_title, old.keywords, old.genres, old.tagline, old.overview); "
    "INSERT INTO items_fts(rowid, title, original_title, keywords, genres, tagline, overview) "
    "VALUES (new.id, new.title, new.original_title, new.keywords, new.genres, new.tagline, new.overview); END",
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
    "setweight(to_tsvector('english'::regconfig, coalesce(overview, '')), 'D')"
)
_PG_UP = [
    f"ALTER TABLE items ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({_PG_DOCUMENT}) STORED",
    "CREATE INDEX ix_items_search_document ON items USING gin (search_document)",
]
_PG_DOWN = [
    "DROP INDEX IF EXISTS ix_items_search_document",
    "ALTER TABLE items DROP COLUMN IF EXISTS search_document",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _PG_UP if dialect == "postgresql" else _SQLITE_UP if dialect == "sqlite" else []:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in _PG_DOWN if dialect == "postgresql" else _SQLITE_DOWN if dialect == "sqlite" else []:
        op.execute(statement)
