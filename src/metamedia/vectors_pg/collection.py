"""A vector collection stored and searched inside PostgreSQL with pgvector.

One table per collection: `id bigint` primary key, `embedding vector(dim)`, `payload jsonb`
(GIN index), plus an HNSW index for the metric (cosine, l2, dot) built with the collection's M
and ef_construction. Scores follow the embedded store: cosine similarity and inner product
(higher is better), Euclidean distance (not squared) and L1 distance (lower is better).
Manhattan has no HNSW operator class before pgvector 0.7: such collections are searched exactly.

Every write also appends to the change log (changes.py) in its own transaction, numbered in
commit order, so copies of a collection elsewhere (Ray index shards) can follow it.

Searches bypass SQLAlchemy (see searchconn.py): one statement per unfiltered query on a pooled
autocommit connection, the vector bound in binary, ef_search set only when it changes.

Filtered search (contract: recall ≥ 0.99 vs exact, never fewer than k when ≥ k match), one scan
in the common case: the table size comes from the planner statistics, which fixes the exact cap
(`exact_max`, or just under `EXACT_SELECTIVITY` of the table); one query then ranks exactly the
first cap + 1 matching rows and counts them (`count(*) OVER ()`). At most cap matched → that is
the answer. More → HNSW with ef raised for the selectivity, and an exact re-query when fewer
than k rows came back (pgvector < 0.8 cannot continue an index scan past ef_search).

Exact scans of a filter on typed columns (typed.py) read the rows through the columns alone when
no row holds a tested field as a list or object (checked in the same statement through a partial
index), and through the full filter with its JSONB fallback otherwise; with a covering field that
is an index-only scan.
"""

from __future__ import annotations

import functools
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pgvector.sqlalchemy import Vector
from sqlalchemy import BigInteger, Column, MetaData, Table, delete, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import Connection, Engine

from ..errors import NotFound
from ..store.postgres import PgVectorInfo
from ..vectors.base import Hit, higher_is_better
from ..vectors.config import CollectionConfig
from ..vectors.filters import parse_filter
from ..vectors.validation import check_ef, check_ids, check_k, check_payloads, check_threshold, check_vectors
from .changes import DELETE, UPSERT, log_change
from .searchconn import SearchConnection, SearchConnections
from .sqlfilter import FilterCompiler
from .typed import TypedField, add_columns_sql

PGVECTOR_MAX_EF = 1000  # hnsw.ef_search upper bound in pgvector
EXACT_SELECTIVITY = 0.2
FILTERED_EF_FACTOR = 10  # candidates per wanted match: 200 at k=10 and 50% selectivity
DEFAULT_EXACT_MAX = 20_000
TABLE_SIZE_TTL_S = 1.0  # how long a search reuses the table size it looked up
ESTIMATE_TTL_S = 30.0  # ... and the planner's row estimate for one filter and its values
ESTIMATES_KEPT = 256
# metric -> (distance operator, HNSW operator class or None)
METRIC_SQL = {
    "cosine": ("<=>", "vector_cosine_ops"),
    "l2": ("<->", "vector_l2_ops"),
    "dot": ("<#>", "vector_ip_ops"),
    "manhattan": ("<+>", None),
}


def search_connections(engine: Engine, pgvector: PgVectorInfo) -> SearchConnections:
    """The bounded connection pool searches run on, with iterative index scans where available."""
    session = {"hnsw.iterative_scan": "strict_order"} if pgvector.iterative_scan else {}
    return SearchConnections(engine, session=session)


@dataclass(frozen=True)
class CompiledFilter:
    """A filter as SQL: the full condition, the typed-columns-only form with the list of typed
    fields it relies on (or None), the bound values, and whether row estimates can be trusted."""

    where: str
    params: dict[str, Any]
    estimable: bool = False
    typed_where: str | None = None
    typed_fields: tuple[TypedField, ...] = ()


NO_FILTER = CompiledFilter("TRUE", {})


def table_name(collection: str) -> str:
    return f"mmv_{collection}"


def points_table(config: CollectionConfig) -> Table:
    """The SQLAlchemy table of one collection."""
    return Table(
        table_name(config.name),
        MetaData(),
        Column("id", BigInteger, primary_key=True, autoincrement=False),
        Column("embedding", Vector(config.dim), nullable=False),
        Column("payload", JSONB, nullable=False),
    )


class PgCollection:
    """Same public methods as metamedia.vectors.Collection, served by pgvector."""

    def __init__(
        self,
        engine: Engine,
        config: CollectionConfig,
        pgvector: PgVectorInfo,
        searches: SearchConnections | None = None,
        typed: dict[str, TypedField] | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.typed: dict[str, TypedField] = dict(typed or {})
        self.pgvector = pgvector
        self.searches = searches or search_connections(engine, pgvector)
        self.table = points_table(config)
        self.last_seq = 0  # change-log number of this object's latest write (vectors_pg.changes)
        self._quoted = engine.dialect.identifier_preparer.quote(self.table.name)
        self.exact_max = config.exact_max or DEFAULT_EXACT_MAX
        self._size: tuple[float, int] | None = None  # (monotonic time, table size) of the last look
        self._estimates: dict[tuple[str, str], tuple[float, int]] = {}  # filter -> (time, rows)
        op = METRIC_SQL[config.metric][0]
        self._distance = (
            f"l1_distance(embedding, {_VECTOR_PARAM})" if op == "<+>" else f"embedding {op} {_VECTOR_PARAM}"
        )

    @property
    def name(self) -> str:
        return self.config.name

    # ----- schema ------------------------------------------------------------------------------
    def create_tables(self, conn: Connection) -> None:
        self.table.create(conn)
        index = self.engine.dialect.identifier_preparer.quote
        opclass = METRIC_SQL[self.config.metric][1]
        if opclass is not None:
            conn.execute(
                text(
                    f"CREATE INDEX {index(self.table.name + '_hnsw')} ON {self._quoted} "
                    f"USING hnsw (embedding {opclass}) WITH (m = {int(self.config.m)}, "
                    f"ef_construction = {int(self.config.ef_construction)})"
                )
            )
        conn.execute(
            text(f"CREATE INDEX {index(self.table.name + '_payload')} ON {self._quoted} USING gin (payload)")
        )
        self.add_typed_columns(conn, self.typed)

    def add_typed_columns(
        self, conn: Connection, fields: dict[str, TypedField], *, analyze: bool = True
    ) -> None:
        """Add generated columns + indexes for `fields` (existing ones are kept), then ANALYZE."""
        quote = self.engine.dialect.identifier_preparer.quote
        for statement in add_columns_sql(self._quoted, self.table.name, fields, quote):
            conn.execute(text(statement))
        if fields and analyze:
            conn.execute(text(f"ANALYZE {self._quoted}"))
        self.typed.update(fields)

    # ----- writes ------------------------------------------------------------------------------
    def upsert(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        payloads: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Insert or replace points in one transaction; validation happens before anything changes."""
        id_array = check_ids(ids)
        matrix = check_vectors(vectors, self.config, len(id_array))
        clean = check_payloads(payloads, len(id_array))
        if not len(id_array):
            return
        rows = [
            {"id": int(i), "embedding": v, "payload": p}
            for i, v, p in zip(id_array, matrix, clean, strict=True)
        ]
        stmt = insert(self.table)
        stmt = stmt.on_conflict_do_update(
            index_elements=[self.table.c.id],
            set_={"embedding": stmt.excluded.embedding, "payload": stmt.excluded.payload},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, rows)
            self.last_seq = log_change(conn, self.name, UPSERT, id_array.tolist())

    def delete(self, ids: Sequence[int] | np.ndarray) -> int:
        id_array = check_ids(ids, unique=False)
        with self.engine.begin() as conn:
            result = conn.execute(delete(self.table).where(self.table.c.id.in_([int(i) for i in id_array])))
            if result.rowcount:
                self.last_seq = log_change(conn, self.name, DELETE, id_array.tolist())
        return int(result.rowcount)

    # ----- reads -------------------------------------------------------------------------------
    def get(self, point_id: int) -> tuple[np.ndarray, dict[str, Any]]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(self.table.c.embedding, self.table.c.payload).where(self.table.c.id == int(point_id))
            ).first()
        if row is None:
            raise NotFound(f"no point {point_id} in collection {self.name!r}", {"id": point_id})
        return np.asarray(row[0], dtype=np.float32), dict(row[1])

    def get_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        id_list = [int(i) for i in check_ids(ids, unique=False)]
        with self.engine.connect() as conn:
            found = dict(
                conn.execute(
                    select(self.table.c.id, self.table.c.embedding).where(self.table.c.id.in_(id_list))
                ).all()
            )
        missing = [i for i in id_list if i not in found]
        if missing:
            raise NotFound(f"no points {missing[:10]} in collection {self.name!r}", {"ids": missing[:100]})
        return np.array([found[i] for i in id_list], dtype=np.float32).reshape(len(id_list), self.config.dim)

    def payload_field(self, name: str) -> dict[int, Any]:
        """One payload field of every point, by id (None where a point lacks it), in one query."""
        field = self.table.c.payload[name]
        with self.engine.connect() as conn:
            return {int(i): v for i, v in conn.execute(select(self.table.c.id, field)).all()}

    def snapshot(self) -> None:
        """Nothing to do: points are durable in PostgreSQL once `upsert` returns."""

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(self.table)).scalar_one())

    def ids(self) -> np.ndarray:
        with self.engine.connect() as conn:
            return np.array(
                conn.execute(select(self.table.c.id).order_by(self.table.c.id)).scalars().all(),
                dtype=np.int64,
            )

    # ----- search ------------------------------------------------------------------------------
    def search(
        self,
        query: np.ndarray,
        k: int = 10,
        *,
        ef: int | None = None,
        filter: dict[str, Any] | None = None,
        threshold: float | None = None,
    ) -> list[Hit]:
        """The k nearest points (best first) among those matching `filter`."""
        vector = check_vectors(query, self.config, what="query")[0]
        k = check_k(k)
        ef_value = check_ef(ef, self.config.ef_search)
        limit = check_threshold(threshold)
        compiled = self._compile(filter)
        hits = self.searches.run(lambda s: self._plan_and_run(s, vector, k, ef_value, compiled))
        if limit is not None:
            better = higher_is_better(self.config.metric)
            hits = [h for h in hits if (h.score >= limit if better else h.score <= limit)]
        return hits

    def search_batch(
        self, queries: np.ndarray, k: int = 10, *, ef: int | None = None, filter: dict[str, Any] | None = None
    ) -> list[list[Hit]]:
        matrix = check_vectors(queries, self.config, what="queries")
        k = check_k(k)
        ef_value = check_ef(ef, self.config.ef_search)
        compiled = self._compile(filter)
        return self.searches.run(lambda s: [self._plan_and_run(s, q, k, ef_value, compiled) for q in matrix])

    def _compile(self, filter: dict[str, Any] | None) -> CompiledFilter:
        group = parse_filter(filter)
        if group is None:
            return NO_FILTER
        compiler = FilterCompiler(typed=self.typed)
        where = compiler.compile(group)
        typed_where = compiler.compile_typed_only(group) if compiler.used_typed else None
        return CompiledFilter(
            where, compiler.params, compiler.all_typed, typed_where, tuple(compiler.used_typed.values())
        )

    def _matching(self, compiled: CompiledFilter) -> str:
        """SELECT (id, distance d) of the rows matching the filter. With typed fields: the typed-only
        condition while no row holds one of them as a list or object (one probe of each field's
        partial index, evaluated once per statement), the full condition otherwise."""
        rows = f"SELECT id, {self._distance} AS d FROM {self._quoted} WHERE "  # noqa: S608
        if compiled.typed_where is None:
            return rows + compiled.where
        clean = " AND ".join(
            f"NOT EXISTS (SELECT 1 FROM {self._quoted} WHERE {t.odd_rows})"  # noqa: S608
            for t in compiled.typed_fields
        )
        return (
            f"{rows}{compiled.typed_where} AND (SELECT {clean}) "
            f"UNION ALL {rows}{compiled.where} AND NOT (SELECT {clean})"
        )

    def explain(self, k: int = 10, *, filter: dict[str, Any] | None = None) -> dict[str, Any]:
        """How a search with this filter would run: matching rows, selectivity, exact or HNSW."""
        compiled = self._compile(filter)
        sql = f"SELECT count(*) FROM {self._quoted} WHERE {compiled.where}"  # noqa: S608
        odd = " OR ".join(t.odd_rows for t in compiled.typed_fields) or "FALSE"
        odd_sql = f"SELECT EXISTS (SELECT 1 FROM {self._quoted} WHERE {odd})"  # noqa: S608

        def counts(search: SearchConnection) -> tuple[int, int, int | None, bool]:
            row = search.conn.execute(_pyformat(sql), compiled.params, prepare=False).fetchone()
            estimate = self._estimate(search, compiled) if compiled.estimable else None
            odd_row = search.conn.execute(odd_sql, prepare=False).fetchone()
            return self._table_size(search), int(row[0]) if row else 0, estimate, bool(odd_row and odd_row[0])

        total, matching, estimate, odd_rows = self.searches.run(counts)
        cap = self._exact_cap(total, k)
        exact = self._exact_only(k) or (compiled.where != "TRUE" and matching <= cap)
        return {
            "total": total,
            "matching": matching,
            "estimated_matching": estimate,
            "typed_columns": compiled.estimable,
            # exact scans test the typed columns alone (no row holds a tested field as a list/object)
            "typed_only_scan": compiled.typed_where is not None and not odd_rows,
            "covering": [t.field for t in compiled.typed_fields if t.covering],
            "exact_cap": cap,
            "plan": "exact" if exact else "hnsw",
            "iterative_scan": self.pgvector.iterative_scan,
        }

    def _exact_only(self, k: int) -> bool:
        return METRIC_SQL[self.config.metric][1] is None or k > PGVECTOR_MAX_EF

    def _exact_cap(self, total: int, k: int) -> int:
        """Most matches answered exactly: `exact_max`, or fewer than EXACT_SELECTIVITY of the table."""
        return max(self.exact_max, k, math.ceil(EXACT_SELECTIVITY * total) - 1)

    def _table_size_recent(self, search: SearchConnection) -> int:
        """`_table_size`, remembered for TABLE_SIZE_TTL_S: it only sizes the exact cap and the
        widened ef, and a stale value can cost speed, never an answer (the capped query counts)."""
        remembered = self._size
        now = time.monotonic()
        if remembered is not None and now - remembered[0] < TABLE_SIZE_TTL_S:
            return remembered[1]
        size = self._table_size(search)
        self._size = (now, size)
        return size

    def _table_size(self, search: SearchConnection) -> int:
        """Rows in the table as the planner estimates them (statistics scaled to the current
        size); an exact count when the table was never analysed."""
        row = search.conn.execute(_TABLE_SIZE_SQL, (self._quoted,), prepare=True).fetchone()
        estimate = float(row[0]) if row and row[0] is not None else -1.0
        if estimate >= 0:
            return round(estimate)
        counted = search.conn.execute(f"SELECT count(*) FROM {self._quoted}", prepare=True).fetchone()  # noqa: S608
        return int(counted[0]) if counted else 0

    def _plan_and_run(
        self,
        search: SearchConnection,
        vector: np.ndarray,
        k: int,
        ef: int,
        compiled: CompiledFilter,
    ) -> list[Hit]:
        """Exact over the matching rows when at most the cap match, else HNSW with a widened ef.

        With typed columns only (`estimable`), the planner's row estimate (btree statistics, looked
        up once per filter and value every ESTIMATE_TTL_S) picks HNSW for large matches without
        ranking `cap` rows first, and for few it ranks every match exactly with no count; other
        filters get one capped exact query that ranks the matches and counts them. One statement
        per search in the steady state."""
        if self._exact_only(k):
            return self._exact(search, vector, k, compiled)
        if compiled.where == "TRUE":
            return self._hnsw(search, vector, k, ef, compiled)
        total = self._table_size_recent(search)
        cap = self._exact_cap(total, k)
        if compiled.estimable:
            matching = self._estimate_recent(search, compiled)
            if matching <= cap:
                # exact over every match, uncapped and uncounted: always the right answer, and a
                # low estimate (stale statistics) costs at most a full exact scan
                return self._exact(search, vector, k, compiled)
        hits, matching = self._exact_capped(search, vector, k, compiled, cap)
        if matching <= cap:
            return hits
        # more than `cap` match (`matching` is a lower bound): widen ef for the selectivity
        ef = max(ef, math.ceil(FILTERED_EF_FACTOR * k * max(total, matching) / matching))
        hits = self._hnsw(search, vector, k, ef, compiled)
        if len(hits) < k:
            # the graph walk ran out of matching candidates (no iterative scan): answer exactly
            hits = self._exact(search, vector, k, compiled)
        return hits

    def _hnsw(
        self,
        search: SearchConnection,
        vector: np.ndarray,
        k: int,
        ef: int,
        compiled: CompiledFilter,
    ) -> list[Hit]:
        search.ensure("hnsw.ef_search", str(min(PGVECTOR_MAX_EF, max(ef, k))))
        sql = (
            f"SELECT id, {self._distance} AS d FROM {self._quoted} "  # noqa: S608
            f"WHERE {compiled.where} ORDER BY d LIMIT {k}"
        )
        return self._hits(search, sql, vector, compiled.params)

    def _estimate_recent(self, search: SearchConnection, compiled: CompiledFilter) -> int:
        """`_estimate`, remembered per filter and values for ESTIMATE_TTL_S (statistics change only
        on ANALYZE; a stale estimate costs speed, never an answer: the capped query counts, and a
        short HNSW answer is redone exactly)."""
        key = (compiled.typed_where or compiled.where, repr(sorted(compiled.params.items())))
        now = time.monotonic()
        remembered = self._estimates.get(key)
        if remembered is not None and now - remembered[0] < ESTIMATE_TTL_S:
            return remembered[1]
        if len(self._estimates) >= ESTIMATES_KEPT:
            self._estimates.clear()
        estimate = self._estimate(search, compiled)
        self._estimates[key] = (now, estimate)
        return estimate

    def _estimate(self, search: SearchConnection, compiled: CompiledFilter) -> int:
        """Rows matching the filter as the planner estimates them for these values (from the
        typed columns' statistics when the filter is on typed columns only)."""
        where = compiled.typed_where or compiled.where
        sql = f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {self._quoted} WHERE {where}"  # noqa: S608
        row = search.conn.execute(_pyformat(sql), compiled.params, prepare=False).fetchone()
        try:
            return int(row[0][0]["Plan"]["Plan Rows"]) if row else 0
        except (KeyError, IndexError, TypeError, ValueError):
            return 0

    def _exact(
        self, search: SearchConnection, vector: np.ndarray, k: int, compiled: CompiledFilter
    ) -> list[Hit]:
        # OFFSET 0 keeps the subquery apart, so the ORDER BY cannot become an HNSW index scan
        sql = f"SELECT id, d FROM ({self._matching(compiled)} OFFSET 0) m ORDER BY d LIMIT {k}"  # noqa: S608
        return self._hits(search, sql, vector, compiled.params)

    def _exact_capped(
        self,
        search: SearchConnection,
        vector: np.ndarray,
        k: int,
        compiled: CompiledFilter,
        cap: int,
    ) -> tuple[list[Hit], int]:
        """Exact top k when at most `cap` rows match, and how many matched (cap + 1 means more)."""
        sql = (
            f"SELECT id, d, count(*) OVER () FROM ({self._matching(compiled)} "  # noqa: S608
            f"LIMIT {cap + 1}) m ORDER BY d LIMIT {k}"
        )
        rows = search.conn.execute(_pyformat(sql), {**compiled.params, "q": vector}, prepare=False).fetchall()
        matching = int(rows[0][2]) if rows else 0
        return [Hit(int(r[0]), self._score(float(r[1]))) for r in rows], matching

    def _hits(
        self, search: SearchConnection, sql: str, vector: np.ndarray, params: dict[str, Any]
    ) -> list[Hit]:
        # unfiltered statements are few and fixed: prepare them; filtered ones get a custom plan each time
        rows = search.conn.execute(_pyformat(sql), {**params, "q": vector}, prepare=not params).fetchall()
        return [Hit(int(i), self._score(float(d))) for i, d in rows]

    def _score(self, distance: float) -> float:
        metric = self.config.metric
        if metric == "cosine":
            return 1.0 - distance
        if metric == "dot":
            return -distance
        return distance


_TABLE_SIZE_SQL = (
    "SELECT CASE WHEN c.reltuples > 0 AND c.relpages > 0 THEN c.reltuples / c.relpages * "
    "(pg_relation_size(c.oid) / current_setting('block_size')::float8) ELSE -1 END "
    "FROM pg_class c WHERE c.oid = CAST(%s AS regclass)"
)
_BIND = re.compile(r"(?<![:\w]):(f\d+)\b")


@functools.lru_cache(maxsize=512)  # statements repeat: one per filter shape and k
def _pyformat(sql: str) -> str:
    """SQLAlchemy-style `:f0` filter parameters (and `:q`, the query vector, bound in binary)
    as psycopg placeholders, with literal percent signs escaped."""
    escaped = _BIND.sub(r"%(\1)s", sql.replace("%", "%%"))
    return escaped.replace(_VECTOR_PARAM, "%(q)b")


_VECTOR_PARAM = "CAST(:q AS vector)"
