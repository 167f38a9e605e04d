"""Copy a whole metamedia database between two URLs (SQLite ⇄ PostgreSQL), then prove the copy.

- Batched keyset copy in primary-key order; each batch and its progress mark commit in ONE target
  transaction (table `metamedia_migration_progress`), so an interrupted copy resumes exactly where
  it stopped, with no row copied twice or skipped.
- `dry_run` reads both sides and reports what would be copied; it writes nothing anywhere.
- Verification: per table, row counts and an order-independent checksum (sum of per-row SHA-256
  modulo 2**256 over a canonical form of every column), plus decoded vectors compared on a
  sample; any difference raises `VerificationFailed` listing every bad table.
- `ShadowReader`: reads go to both stores, the primary's answer is returned, differences are
  logged and counted — run it before switching the service over.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import Connection, Engine

from ..errors import Conflict, MetamediaError
from .migrations import upgrade_schema
from .postgres import is_postgres_url, make_pg_engine
from .sql import make_engine

log = logging.getLogger("metamedia.migrate")

# Every table metamedia keeps, by owning module; catalog first, then in each module's FK order
# (no foreign key crosses modules). The pgvector registry is left out: its collections' point
# tables are data-defined and not copied, so copying the registry would name collections whose tables are missing.
# The vector change log (vector_changes) is not copied either: its numbers belong to the database that wrote them.
SCHEMA_MODULES = (
    ("metamedia.store.schema", "metadata"),
    ("metamedia.recommend.storage", "metadata"),
    ("metamedia.vectors.schema", "metadata"),
    ("metamedia.memory.schema", "memory_metadata"),
    ("metamedia.bandit.log", "metadata"),
    ("metamedia.api.keys", "metadata"),
)
_progress_md = MetaData()  # the table itself is created by migration 0002
progress_table = Table(
    "metamedia_migration_progress",
    _progress_md,
    Column("table_name", String(128), primary_key=True),
    Column("last_key", Text),  # JSON list of the last copied primary key
    Column("rows_copied", BigInteger, nullable=False),
    Column("done", Boolean, nullable=False),
)
ProgressCallback = Callable[[str, int, int], None]  # table, rows copied so far, rows in source


class VerificationFailed(MetamediaError):
    """The target does not hold exactly what the source holds."""

    status_code = 500
    exit_code = 6


@dataclass
class TableReport:
    """One table: rows in the source, rows in the target, rows copied by this run."""

    name: str
    source_rows: int
    target_rows: int
    copied: int = 0
    resumed_from: int = 0


@dataclass
class MigrationReport:
    dry_run: bool
    tables: list[TableReport] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.tables)


@dataclass
class TableCheck:
    name: str
    source_rows: int
    target_rows: int
    source_checksum: str
    target_checksum: str
    vector_mismatches: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        same = self.source_rows == self.target_rows and self.source_checksum == self.target_checksum
        return same and not self.vector_mismatches


def open_engine(url: str) -> Engine:
    """An engine for either backend, with the settings the store itself uses."""
    return make_pg_engine(url) if is_postgres_url(url) else make_engine(url)


def known_tables() -> list[Table]:
    """Every table of every metamedia module, parents before children."""
    out: list[Table] = []
    for module_name, attr in SCHEMA_MODULES:
        out.extend(getattr(importlib.import_module(module_name), attr).sorted_tables)
    return out


def ensure_target_schema(engine: Engine) -> None:
    """Every table, the progress marks included, through the schema migrations."""
    upgrade_schema(engine)


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _pk(table: Table) -> list[Column[Any]]:
    cols = list(table.primary_key.columns)
    if not cols:
        raise MetamediaError(f"table {table.name} has no primary key: cannot copy it in batches")
    return cols


def _tables_in(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def migrate(
    source_url: str,
    target_url: str,
    *,
    batch_size: int = 1000,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> MigrationReport:
    """Copy every metamedia table from source to target (resuming an interrupted copy)."""
    if batch_size < 1:
        raise MetamediaError("batch size must be at least 1")
    src, dst = open_engine(source_url), open_engine(target_url)
    try:
        src_tables = _tables_in(src)
        tables = [t for t in known_tables() if t.name in src_tables]
        report = MigrationReport(dry_run=dry_run)
        if dry_run:
            dst_tables = _tables_in(dst)
            with src.connect() as s, dst.connect() as d:
                for t in tables:
                    report.tables.append(
                        TableReport(t.name, _count(s, t), _count(d, t) if t.name in dst_tables else 0)
                    )
            return report
        ensure_target_schema(dst)
        _refuse_foreign_rows(dst, tables)
        for t in tables:
            report.tables.append(_copy_table(src, dst, t, batch_size, progress))
        return report
    finally:
        src.dispose()
        dst.dispose()


def _refuse_foreign_rows(dst: Engine, tables: Sequence[Table]) -> None:
    """Before copying anything: a target table with rows that no earlier run copied is a conflict."""
    with dst.connect() as d:
        marked = set(d.execute(select(progress_table.c.table_name)).scalars())
        for t in tables:
            if t.name not in marked and (existing := _count(d, t)):
                raise Conflict(
                    f"target table {t.name} already holds {existing} rows: migrate into an empty database"
                )


def _copy_table(
    src: Engine, dst: Engine, table: Table, batch_size: int, progress: ProgressCallback | None
) -> TableReport:
    pk = _pk(table)
    with src.connect() as s:
        total = _count(s, table)
    with dst.connect() as d:
        mark = d.execute(select(progress_table).where(progress_table.c.table_name == table.name)).first()
        existing = _count(d, table)
    report = TableReport(table.name, total, existing, resumed_from=mark.rows_copied if mark else 0)
    if mark is not None and mark.done:
        return report
    last_key = json.loads(mark.last_key) if mark is not None and mark.last_key else None
    copied = report.resumed_from
    while True:
        query = select(table).order_by(*pk).limit(batch_size)
        if last_key is not None:
            query = query.where(tuple_(*pk) > tuple_(*last_key))
        with src.connect() as s:
            rows = [dict(r._mapping) for r in s.execute(query)]
        with dst.begin() as d:
            if rows:
                d.execute(insert(table), rows)
                last_key = [rows[-1][c.name] for c in pk]
                copied += len(rows)
            d.execute(delete(progress_table).where(progress_table.c.table_name == table.name))
            d.execute(
                insert(progress_table).values(
                    table_name=table.name, last_key=json.dumps(last_key), rows_copied=copied, done=not rows
                )
            )
            if not rows and dst.dialect.name == "postgresql":
                _reset_sequence(d, table)
        report.copied += len(rows)
        if progress is not None:
            progress(table.name, copied, total)
        if not rows:
            report.target_rows = copied
            return report


def _reset_sequence(conn: Connection, table: Table) -> None:
    """Explicit ids were inserted: move the serial sequence past them so new inserts do not collide."""
    pk = list(table.primary_key.columns)
    if len(pk) != 1 or not isinstance(pk[0].type, Integer) or pk[0].autoincrement is False:
        return
    seq = conn.execute(
        text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": pk[0].name}
    ).scalar()
    if seq is None:
        return
    top = conn.execute(select(func.max(pk[0]))).scalar()
    conn.execute(text("SELECT setval(:s, :v, :called)"), {"s": seq, "v": top or 1, "called": top is not None})


def _canonical(table: Table, row: dict[str, Any]) -> bytes:
    values: list[Any] = []
    for col in table.columns:
        v = row[col.name]
        if v is None:
            values.append(None)
        elif isinstance(col.type, LargeBinary):
            values.append(bytes(v).hex())
        elif isinstance(col.type, Float):
            values.append(repr(float(v)))
        elif isinstance(col.type, Boolean):
            values.append(bool(v))
        elif isinstance(v, (dict, list)):
            values.append(json.dumps(v, sort_keys=True, ensure_ascii=False))
        else:
            values.append(v)
    return json.dumps(values, ensure_ascii=False, default=str).encode()


def table_checksum(engine: Engine, table: Table, batch_size: int = 5000) -> tuple[int, str]:
    """(row count, order-independent checksum) of one table."""
    total, count = 0, 0
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=batch_size).execute(select(table))
        for row in result:
            digest = hashlib.sha256(_canonical(table, dict(row._mapping))).digest()
            total = (total + int.from_bytes(digest, "big")) % (1 << 256)
            count += 1
    return count, f"{total:064x}"


def _sample_vectors(src: Engine, dst: Engine, table: Table, sample: int) -> list[Any]:
    """Keys whose decoded float32 vectors differ between the two databases (sampled rows)."""
    vec_cols = [c for c in table.columns if isinstance(c.type, LargeBinary)]
    if not vec_cols or sample < 1:
        return []
    pk = _pk(table)
    with src.connect() as s:
        n = _count(s, table)
        step = max(1, n // sample)
        rows = [r for i, r in enumerate(s.execute(select(table).order_by(*pk))) if i % step == 0][:sample]
    bad: list[Any] = []
    with dst.connect() as d:
        for row in rows:
            m = row._mapping
            cond = [c == m[c.name] for c in pk]
            other = d.execute(select(table).where(*cond)).first()
            for col in vec_cols:
                a, b = m[col.name], None if other is None else other._mapping[col.name]
                if not _same_vector(a, b):
                    bad.append([m[c.name] for c in pk])
                    break
    return bad


def _same_vector(a: bytes | None, b: bytes | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.array_equal(np.frombuffer(bytes(a), np.float32), np.frombuffer(bytes(b), np.float32)))


def verify(
    source_url: str, target_url: str, *, sample: int = 64, raise_on_difference: bool = True
) -> list[TableCheck]:
    """Compare every table of the source with the target; raises VerificationFailed on any difference."""
    src, dst = open_engine(source_url), open_engine(target_url)
    try:
        src_tables, dst_tables = _tables_in(src), _tables_in(dst)
        checks: list[TableCheck] = []
        for t in known_tables():
            if t.name not in src_tables:
                continue
            s_rows, s_sum = table_checksum(src, t)
            d_rows, d_sum = table_checksum(dst, t) if t.name in dst_tables else (0, "missing")
            mismatches = _sample_vectors(src, dst, t, sample) if t.name in dst_tables else []
            checks.append(TableCheck(t.name, s_rows, d_rows, s_sum, d_sum, mismatches))
    finally:
        src.dispose()
        dst.dispose()
    bad = [c for c in checks if not c.ok]
    if bad and raise_on_difference:
        detail = [
            {
                "table": c.name,
                "source_rows": c.source_rows,
                "target_rows": c.target_rows,
                "checksums_equal": c.source_checksum == c.target_checksum,
                "vector_mismatches": c.vector_mismatches[:10],
            }
            for c in bad
        ]
        raise VerificationFailed(f"verification failed for {', '.join(c.name for c in bad)}", detail)
    return checks


class ShadowReader:
    """Sends each read to a primary and a shadow store, returns the primary's answer, and
    logs and counts every difference. Writes are not shadowed: use it on read paths only."""

    READS = frozenset(
        {
            "count_items",
            "item_ids",
            "get_item",
            "get_items",
            "find_ids",
            "load_sources",
            "get_meta",
            "find_orphans",
        }
    )

    def __init__(self, primary: Any, shadow: Any) -> None:
        self.primary = primary
        self.shadow = shadow
        self.reads = 0
        self.differences = 0
        self.shadow_errors = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.primary, name)
        if name not in self.READS:
            return target

        def shadowed(*args: Any, **kwargs: Any) -> Any:
            result = target(*args, **kwargs)
            self.reads += 1
            try:
                other = getattr(self.shadow, name)(*args, **kwargs)
            except Exception as exc:  # a failing shadow must never break the primary read path
                self.shadow_errors += 1
                log.warning("shadow read %s failed: %s", name, exc)
                return result
            if _comparable(other) != _comparable(result):
                self.differences += 1
                log.warning("shadow read %s%r differs between backends", name, args)
            return result

        return shadowed


def _comparable(value: Any) -> Any:
    """Lists and tuples compare equal when their elements do."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [_comparable(v) for v in value]
    return value
