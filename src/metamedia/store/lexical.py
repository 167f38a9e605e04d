"""Lexical (full-text) retrieval over the catalog, inside the store of record.

One interface, two engines' own ranking functions (no hand-written BM25):
- SQLite: an FTS5 table (`items_fts`, external content over `items`, porter stemming) kept in step
  by triggers on `items`, so it changes in the same transaction as every item write, update and
  delete; ranked by FTS5's `bm25()` with per-column weights.
- PostgreSQL: a stored generated `tsvector` column on `items` (`search_document`, English
  configuration, weights A..D per field) with a GIN index; ranked by `ts_rank_cd`.
Both are created (and back-filled) by schema revision 0003.

Fields, highest weight first: title; original title, keywords and collection; production companies;
genres and tagline; overview.
A query is a bag of words: any word may match (OR), and the ranking function rewards matching more
of them, rarer ones and in heavier fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

FTS_TABLE = "items_fts"
PG_COLUMN = "search_document"
PG_INDEX = "ix_items_search_document"
# Column order of items_fts; bm25() takes one weight per column in this order.
FTS_COLUMNS = (
    "title",
    "original_title",
    "keywords",
    "genres",
    "tagline",
    "overview",
    "companies",
    "collection",
)
MAX_TERMS = 32
# Words that match nearly every document and only slow the OR query down.
STOP_TERMS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were with "
    "me show find some something movie movies film films but no not without".split()
)


@dataclass(frozen=True)
class LexicalHit:
    """An item the full-text index matched, with the engine's own relevance (higher is better)."""

    item_id: int
    score: float
    titles: tuple[str, ...] = ()  # title and original title, filled by search_titles only


class LexicalIndex(Protocol):
    """Full-text retrieval over the catalog items."""

    def search(self, query: str, limit: int = 100) -> list[LexicalHit]: ...

    def search_titles(self, query: str, limit: int = 20) -> list[LexicalHit]:
        """Items whose title or original title holds every word of the query (stop words aside)."""
        ...

    def search_all(self, query: str, limit: int = 20) -> list[LexicalHit]:
        """Items holding every word of the query in any field (stop words aside)."""
        ...

    def optimize(self) -> None:
        """Compact the index after a bulk write (same answers, fewer structures to read per query)."""
        ...


def query_terms(query: str) -> list[str]:
    """The words of a query that are worth matching: lower-cased, alphanumeric, no stop words."""
    words = re.findall(r"[^\W_]+", query.casefold())
    return list(dict.fromkeys(w for w in words if w not in STOP_TERMS))[:MAX_TERMS]


def is_lexical_object(name: str | None) -> bool:
    """True for the database objects of the lexical index, which no MetaData declares: the FTS5 table
    and its shadow tables (SQLite), the generated column and its index (PostgreSQL)."""
    if not name:
        return False
    return name in (FTS_TABLE, PG_COLUMN, PG_INDEX) or name.startswith(FTS_TABLE + "_")


class SqliteLexicalIndex:
    """FTS5 + bm25() over `items_fts`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # bm25() is "lower is better" (negative); negate it so higher is better like ts_rank_cd.
        # Column weights (FTS_COLUMNS order): title 10, original title 4, keywords 4, genres 2,
        # tagline 1.5, overview 1, companies 3, collection 4.
        self._sql = (
            "SELECT rowid, -bm25(items_fts, 10.0, 4.0, 4.0, 2.0, 1.5, 1.0, 3.0, 4.0) AS score FROM items_fts "
            "WHERE items_fts MATCH :match ORDER BY score DESC LIMIT :limit"
        )
        self._titles_sql = (
            "SELECT rowid, -bm25(items_fts, 10.0, 4.0, 4.0, 2.0, 1.5, 1.0, 3.0, 4.0) AS score, title, "
            "original_title FROM items_fts WHERE items_fts MATCH :match ORDER BY score DESC LIMIT :limit"
        )

    def search(self, query: str, limit: int = 100) -> list[LexicalHit]:
        terms = query_terms(query)
        if not terms:
            return []
        # Each word quoted is an FTS5 string (no operators); quotes inside are doubled.
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        rows = self._rows(self._sql, {"match": match, "limit": int(limit)})
        return [LexicalHit(int(r[0]), float(r[1])) for r in rows]

    def search_titles(self, query: str, limit: int = 20) -> list[LexicalHit]:
        terms = query_terms(query)
        if not terms:
            return []
        words = " AND ".join('"' + t.replace('"', '""') + '"' for t in terms)
        rows = self._rows(
            self._titles_sql, {"match": "{title original_title} : (" + words + ")", "limit": int(limit)}
        )
        return [LexicalHit(int(r[0]), float(r[1]), _titles(r[2], r[3])) for r in rows]

    def search_all(self, query: str, limit: int = 20) -> list[LexicalHit]:
        terms = query_terms(query)
        if not terms:
            return []
        words = " AND ".join('"' + t.replace('"', '""') + '"' for t in terms)
        rows = self._rows(self._sql, {"match": words, "limit": int(limit)})
        return [LexicalHit(int(r[0]), float(r[1])) for r in rows]

    def _rows(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """One parameterised read on a pooled connection's sqlite3 cursor: a new query runs two or
        three of these, and SQLAlchemy's statement and result layers cost ~0.1 ms each around them."""
        with self.engine.connect() as conn:
            cursor = conn.connection.driver_connection.execute(sql, params)  # type: ignore[union-attr]
            try:
                return cursor.fetchall()
            finally:
                cursor.close()

    def optimize(self) -> None:
        """Merge the FTS5 index's segments into one (FTS5's own 'optimize' command).

        Every write transaction adds a segment; FTS5's automerge keeps a few per level, so after a
        bulk ingest a query term is looked up in each of them. One segment makes a new query's three
        full-text statements 2-6x cheaper (1,000 TMDB movies: 380 -> 175 us for the OR query, 130 ->
        20 us for the title probe); the ranking (bm25 over the same documents) is unchanged. The
        whole index is rewritten: cheap beside the embedding of a bulk ingest, so it runs after one."""
        with self.engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO items_fts(items_fts) VALUES ('optimize')")


class PostgresLexicalIndex:
    """tsvector (generated, GIN-indexed) + ts_rank_cd."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = text(
            "SELECT id, ts_rank_cd(search_document, q) AS score "
            "FROM items, to_tsquery('english', :tsquery) AS q "
            "WHERE search_document @@ q ORDER BY score DESC, id LIMIT :limit"
        )
        self._titles_sql = text(
            "SELECT id, ts_rank_cd(search_document, q) AS score, title, original_title "
            "FROM items, to_tsquery('english', :tsquery) AS q "
            "WHERE search_document @@ q ORDER BY score DESC, id LIMIT :limit"
        )

    def search(self, query: str, limit: int = 100) -> list[LexicalHit]:
        # Terms are letters and digits only, so joining them with | is a valid tsquery.
        terms = query_terms(query)
        if not terms:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(self._sql, {"tsquery": " | ".join(terms), "limit": int(limit)}).all()
        return [LexicalHit(int(r[0]), float(r[1])) for r in rows]

    def search_titles(self, query: str, limit: int = 20) -> list[LexicalHit]:
        # Weights A and B are the title and the original title (revision 0003/0004).
        terms = query_terms(query)
        if not terms:
            return []
        with self.engine.connect() as conn:
            tsquery = " & ".join(f"{t}:AB" for t in terms)
            rows = conn.execute(self._titles_sql, {"tsquery": tsquery, "limit": int(limit)}).all()
        return [LexicalHit(int(r[0]), float(r[1]), _titles(r[2], r[3])) for r in rows]

    def search_all(self, query: str, limit: int = 20) -> list[LexicalHit]:
        terms = query_terms(query)
        if not terms:
            return []
        with self.engine.connect() as conn:
            rows = conn.execute(self._sql, {"tsquery": " & ".join(terms), "limit": int(limit)}).all()
        return [LexicalHit(int(r[0]), float(r[1])) for r in rows]

    def optimize(self) -> None:
        """Nothing to do: the GIN index takes its pending entries in as PostgreSQL's autovacuum runs."""


def _titles(title: str | None, original_title: str | None) -> tuple[str, ...]:
    return tuple(t for t in (title, original_title) if t)


def open_lexical_index(engine: Engine) -> LexicalIndex:
    """The lexical index of the store behind `engine` (its schema must be at revision 0003 or later)."""
    if engine.dialect.name == "postgresql":
        return PostgresLexicalIndex(engine)
    if engine.dialect.name == "sqlite":
        return SqliteLexicalIndex(engine)
    raise ValueError(f"no lexical index for the {engine.dialect.name} backend")
