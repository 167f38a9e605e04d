"""A vector collection stored and searched inside PostgreSQL with pgvector.

One table per collection: `id bigint` primary key, `embedding vector(dim)`, `payload jsonb`
(GIN index), plus an HNSW index for the metric (cosine, l2, dot) built with the collection's M
and ef_construction. Scores follow the embedded store: cosine similarity and inner product
(higher is better), Euclidean distance (not squared) and L1 distance (lower is better).
Manhattan has no HNSW operator class before pgvector 0.7: such collections are searched exactly.

Filtered search (contract: recall ≥ 0.99 vs exact, never fewer than k when ≥ k match):
count the matching rows first; few matches (≤ `exact_max` or selectivity below
`EXACT_SELECTIVITY`) → exact distance order over just those rows with index scans disabled;
otherwise HNSW with ef raised for the selectivity, and — on pgvector < 0.8, which cannot
continue an index scan past ef_search — an exact re-query when fewer than k rows came back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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
from .sqlfilter import compile_filter

PGVECTOR_MAX_EF = 1000  # hnsw.ef_search upper bound in pgvector
EXACT_SELECTIVITY = 0.2
FILTERED_EF_FACTOR = 10  # candidates per wanted match: 200 at k=10 and 50% selectivity
DEFAULT_EXACT_MAX = 20_000
# metric -> (distance operator, HNSW operator class or None)
METRIC_SQL = {
    "cosine": ("<=>", "vector_cosine_ops"),
    "l2": ("<->", "vector_l2_ops"),
    "dot": ("<#>", "vector_ip_ops"),
    "manhattan": ("<+>", None),
}


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

    def __init__(self, engine: Engine, config: CollectionConfig, pgvector: PgVectorInfo) -> None:
        self.engine = engine
        self.config = config
        self.pgvector = pgvector
        self.table = points_table(config)
        self._quoted = engine.dialect.identifier_preparer.quote(self.table.name)
        self.exact_max = config.exact_max or DEFAULT_EXACT_MAX

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

    def delete(self, ids: Sequence[int] | np.ndarray) -> int:
        id_array = check_ids(ids, unique=False)
        with self.engine.begin() as conn:
            result = conn.execute(delete(self.table).where(self.table.c.id.in_([int(i) for i in id_array])))
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
        where, params = compile_filter(parse_filter(filter))
        with self.engine.begin() as conn:
            hits = self._plan_and_run(conn, vector, k, ef_value, where, params, filter is not None)
        if limit is not None:
            better = higher_is_better(self.config.metric)
            hits = [h for h in hits if (h.score >= limit if better else h.score <= limit)]
        return hits

    def search_batch(
        self, queries: np.ndarray, k: int = 10, *, ef: int | None = None, filter: dict[str, Any] | None = None
    ) -> list[list[Hit]]:
        matrix = check_vectors(queries, self.config, what="queries")
        return [self.search(q, k, ef=ef, filter=filter) for q in matrix]

    def explain(self, k: int = 10, *, filter: dict[str, Any] | None = None) -> dict[str, Any]:
        """How a search with this filter would run: matching rows, selectivity, exact or HNSW."""
        where, params = compile_filter(parse_filter(filter))
        with self.engine.begin() as conn:
            total, matching = self._counts(conn, where, params)
        exact = self._use_exact(total, matching, k)
        return {
            "total": total,
            "matching": matching,
            "plan": "exact" if exact else "hnsw",
            "iterative_scan": self.pgvector.iterative_scan,
        }

    def _counts(self, conn: Connection, where: str, params: dict[str, Any]) -> tuple[int, int]:
        total = int(conn.execute(text(f"SELECT count(*) FROM {self._quoted}")).scalar_one())  # noqa: S608
        if where == "TRUE":
            return total, total
        count_matching = f"SELECT count(*) FROM {self._quoted} WHERE {where}"  # noqa: S608
        matching = conn.execute(text(count_matching), params).scalar_one()
        return total, int(matching)

    def _use_exact(self, total: int, matching: int, k: int) -> bool:
        if METRIC_SQL[self.config.metric][1] is None or k > PGVECTOR_MAX_EF:
            return True
        selectivity = matching / total if total else 1.0
        return matching <= self.exact_max or selectivity < EXACT_SELECTIVITY

    def _plan_and_run(
        self,
        conn: Connection,
        vector: np.ndarray,
        k: int,
        ef: int,
        where: str,
        params: dict[str, Any],
        filtered: bool,
    ) -> list[Hit]:
        if filtered:
            total, matching = self._counts(conn, where, params)
            if matching == 0:
                return []
            if self._use_exact(total, matching, k):
                return self._query(conn, vector, k, where, params, exact=True)
            ef = max(ef, math.ceil(FILTERED_EF_FACTOR * k * total / matching))
        elif METRIC_SQL[self.config.metric][1] is None or k > PGVECTOR_MAX_EF:
            return self._query(conn, vector, k, where, params, exact=True)
        hits = self._query(conn, vector, k, where, params, exact=False, ef=min(PGVECTOR_MAX_EF, max(ef, k)))
        if len(hits) < k and filtered:
            # the graph walk ran out of matching candidates (no iterative scan): answer exactly
            expected = min(k, self._counts(conn, where, params)[1])
            if len(hits) < expected:
                hits = self._query(conn, vector, k, where, params, exact=True)
        return hits

    def _query(
        self,
        conn: Connection,
        vector: np.ndarray,
        k: int,
        where: str,
        params: dict[str, Any],
        *,
        exact: bool,
        ef: int = 0,
    ) -> list[Hit]:
        op = METRIC_SQL[self.config.metric][0]
        if exact:
            conn.execute(text("SET LOCAL enable_indexscan = off"))
        else:
            conn.execute(text(f"SET LOCAL hnsw.ef_search = {int(ef)}"))
            if self.pgvector.iterative_scan:
                conn.execute(text("SET LOCAL hnsw.iterative_scan = strict_order"))
        distance = (
            "l1_distance(embedding, CAST(:q AS vector))"
            if op == "<+>"
            else f"embedding {op} CAST(:q AS vector)"
        )
        sql = text(
            f"SELECT id, {distance} AS d FROM {self._quoted} WHERE {where} ORDER BY d LIMIT :k"  # noqa: S608
        )
        rows = conn.execute(
            sql, {**params, "q": "[" + ",".join(repr(float(x)) for x in vector) + "]", "k": k}
        ).all()
        if exact:
            conn.execute(text("SET LOCAL enable_indexscan = on"))
        return [Hit(int(i), self._score(float(d))) for i, d in rows]

    def _score(self, distance: float) -> float:
        metric = self.config.metric
        if metric == "cosine":
            return 1.0 - distance
        if metric == "dot":
            return -distance
        return distance
