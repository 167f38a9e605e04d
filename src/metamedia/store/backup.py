"""Backend-neutral backup and restore of the whole store of record (SQLite ⇄ PostgreSQL).

- `create_backup` reads every metamedia table in ONE consistent snapshot (a REPEATABLE READ, read
  only transaction on PostgreSQL; one read transaction on SQLite), streams each table in
  primary-key order into gzipped JSON lines, and writes one tar file atomically
  (docs/backup-format.md).
- `verify_backup` proves the file against its own manifest: every row decoded, every table's row
  count, row checksum and file sha256.
- `restore_backup` verifies the whole file first (a damaged file restores nothing), refuses a
  non-empty target unless forced, inserts in one transaction in foreign-key order, moves
  PostgreSQL sequences past the restored ids, then proves the target: per-table row counts and
  checksums equal to the manifest, or `VerificationFailed`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, func, insert, inspect, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DataError, DBAPIError, IntegrityError

from .. import __version__
from ..errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from ..fsutil import fsync_path
from .backup_format import (
    MANIFEST,
    BackupCorrupt,
    BackupIncompatible,
    BackupReader,
    Manifest,
    RowChecksum,
    TableEntry,
    column_kind,
    columns_of,
    file_sha256,
    write_table_file,
)
from .migrate import (
    ProgressCallback,
    TableCheck,
    VerificationFailed,
    _pk,
    _reset_sequence,
    ensure_target_schema,
    known_tables,
    open_engine,
    progress_table,
    table_checksum,
)
from .migrations import VERSION_TABLE
from .postgres import is_postgres_url

log = logging.getLogger("metamedia.backup")

__all__ = [
    "BackupCorrupt",
    "BackupIncompatible",
    "BackupTargetNotEmpty",
    "Manifest",
    "RestoreReport",
    "create_backup",
    "restore_backup",
    "verify_backup",
]


class BackupTargetNotEmpty(Conflict):
    """The restore target already holds metamedia rows (restore with force to replace them)."""


@dataclass
class RestoreReport:
    """What a restore put where, and the per-table proof that it matches the backup."""

    target_backend: str
    manifest: Manifest
    checks: list[TableCheck] = field(default_factory=list)
    cleared: dict[str, int] = field(default_factory=dict)  # rows removed from the target (force)


def create_backup(
    source: str | Engine,
    path: Path | str,
    *,
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Back up every metamedia table of `source` (a URL or an open engine) into the tar file `path`."""
    path = Path(path)
    if batch_size < 1:
        raise InvalidInput("batch size must be at least 1")
    if not path.parent.is_dir():
        raise InvalidInput(f"folder {path.parent} does not exist")
    engine = _open(source, must_exist=True) if isinstance(source, str) else source
    try:
        with (
            _database_errors(engine),
            tempfile.TemporaryDirectory(prefix=".metamedia-backup-", dir=path.parent) as work,
        ):
            manifest = _dump(engine, Path(work), batch_size, progress)
            _write_tar(path, Path(work), manifest)
    except OSError as exc:
        raise InvalidInput(f"cannot write the backup {path}: {exc.strerror or exc}") from exc
    finally:
        if isinstance(source, str):
            engine.dispose()
    log.info("backup %s: %d tables, %d rows", path, len(manifest.tables), manifest.rows)
    return manifest


def verify_backup(path: Path | str, *, progress: ProgressCallback | None = None) -> Manifest:
    """Read the whole file: BackupCorrupt (listing every bad table) unless it matches its manifest."""
    with BackupReader(Path(path)) as reader:
        bad: list[dict[str, Any]] = []
        for entry in reader.manifest.tables:
            problems = reader.check_table(entry)
            if problems:
                bad.append({"table": entry.name, "problems": problems})
            if progress is not None:
                progress(entry.name, 0 if problems else entry.rows, entry.rows)
        if bad:
            found = "; ".join(f"{b['table']}: {', '.join(b['problems'])}" for b in bad)
            raise BackupCorrupt(f"{path} is damaged or altered ({found})", bad)
        return reader.manifest


def restore_backup(
    path: Path | str,
    url: str,
    *,
    force: bool = False,
    batch_size: int = 1000,
    progress: ProgressCallback | None = None,
) -> RestoreReport:
    """Restore a backup into the database at `url` (empty, or cleared first when `force`), then prove it."""
    if batch_size < 1:
        raise InvalidInput("batch size must be at least 1")
    manifest = verify_backup(path)  # before touching the target: a damaged file restores nothing
    pairs = _restorable(manifest)
    engine = _open(url)
    try:
        with _database_errors(engine):
            occupied = _occupied(engine)
            if occupied and not force:
                names = sorted(occupied)
                raise BackupTargetNotEmpty(
                    f"the target database already holds metamedia rows ({', '.join(names[:5])}"
                    f"{', ...' if len(names) > 5 else ''}): restore into an empty database, or force the "
                    "restore to replace everything in it (--force)",
                    occupied,
                )
            ensure_target_schema(engine)
            report = RestoreReport(engine.dialect.name, manifest, cleared=occupied)
            with BackupReader(Path(path)) as reader, engine.begin() as conn:
                if force:
                    _clear(conn)
                for table, entry in pairs:
                    _load_table(conn, reader, table, entry, batch_size, progress)
                if engine.dialect.name == "postgresql":
                    for table in known_tables():
                        _reset_sequence(conn, table)
            report.checks = _prove(engine, pairs)
    finally:
        engine.dispose()
    log.info("restored %s into %s: %d rows", path, engine.dialect.name, manifest.rows)
    return report


# ----- create ---------------------------------------------------------------------------------------


def _open(url: str, *, must_exist: bool = False) -> Engine:
    """An engine for a URL; with `must_exist`, a missing SQLite file is an error, not a new empty file."""
    if not (url.startswith("sqlite") or is_postgres_url(url)):
        raise InvalidInput(
            f"unsupported database URL scheme {url.split(':', 1)[0]!r}: use sqlite:/// or postgresql://"
        )
    try:
        parsed = make_url(url)
        if (
            must_exist
            and parsed.get_backend_name() == "sqlite"
            and parsed.database not in (None, "", ":memory:")
        ):
            if not Path(str(parsed.database)).is_file():
                raise NotFound(f"no database file {parsed.database}")
        return open_engine(url)
    except ArgumentError as exc:
        raise InvalidInput(f"not a database URL metamedia can open: {url.split(':', 1)[0]!r}") from exc


@contextmanager
def _database_errors(engine: Engine) -> Iterator[None]:
    """A database that fails underneath becomes a named error (the URL shown without password)."""
    try:
        yield
    except DBAPIError as exc:  # cannot connect, not a database, server gone mid-way, ...
        where = engine.url.render_as_string(hide_password=True)
        raise BackendUnavailable(f"database {where} failed: {str(exc.orig).strip()[:300]}") from exc


def _dump(engine: Engine, work: Path, batch_size: int, progress: ProgressCallback | None) -> Manifest:
    with engine.connect() as conn:
        _begin_snapshot(conn)
        present = set(inspect(conn).get_table_names())
        if "items" not in present:
            where = engine.url.render_as_string(hide_password=True)
            raise NotFound(f"no metamedia store at {where} (it has no items table)")
        manifest = Manifest(
            metamedia_version=__version__,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            source_backend=engine.dialect.name,
            schema_revision=_revision(conn),
        )
        for table in known_tables():
            if table.name in present:
                manifest.tables.append(_dump_table(conn, table, work, batch_size, progress))
        conn.rollback()  # read only: nothing to keep
    return manifest


def _begin_snapshot(conn: Connection) -> None:
    """Every read after this sees the database as of one moment."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    elif conn.dialect.name == "sqlite":
        dbapi = conn.connection.dbapi_connection
        # pysqlite opens no transaction for SELECTs: without BEGIN each query would see its own moment
        if dbapi is not None and not dbapi.in_transaction:  # type: ignore[attr-defined]
            conn.exec_driver_sql("BEGIN")


def _revision(conn: Connection) -> str | None:
    # deferred: alembic, only when a backup records the schema revision
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def _dump_table(
    conn: Connection, table: Table, work: Path, batch_size: int, progress: ProgressCallback | None
) -> TableEntry:
    total = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    checksum = RowChecksum(table)

    def rows() -> Iterator[dict[str, Any]]:
        query = select(table).order_by(*_pk(table)).execution_options(yield_per=batch_size)
        for batch in conn.execute(query).partitions():
            for row in batch:
                values = dict(row._mapping)
                checksum.add(values)
                yield values
            if progress is not None:
                progress(table.name, checksum.rows, total)

    local = work / f"{table.name}.jsonl.gz"
    try:
        write_table_file(local, [(c.name, column_kind(table, c)) for c in table.columns], rows())
    except ValueError as exc:  # NaN inside a JSON column: no JSON text can carry it
        raise InvalidInput(f"table {table.name} holds a value a backup cannot encode: {exc}") from exc
    if progress is not None and checksum.rows == 0:
        progress(table.name, 0, 0)
    return TableEntry(
        name=table.name,
        rows=checksum.rows,
        checksum=checksum.hexdigest,
        columns=columns_of(table),
        file=f"tables/{table.name}.jsonl.gz",
        sha256=file_sha256(local),
        size=local.stat().st_size,
    )


def _write_tar(path: Path, work: Path, manifest: Manifest) -> None:
    """manifest.json first, then the table files; written beside `path` and renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # A .tar.gz name gets what it says; level 1, as the table files inside are gzipped already.
        packed = path.name.endswith((".gz", ".tgz"))
        options: dict[str, Any] = {"compresslevel": 1} if packed else {}
        with tarfile.open(tmp, "w:gz" if packed else "w", format=tarfile.PAX_FORMAT, **options) as tar:
            data = json.dumps(manifest.to_dict(), indent=1).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(data))
            for entry in manifest.tables:
                tar.add(work / f"{entry.name}.jsonl.gz", arcname=entry.file, filter=_plain)
        fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


# ----- restore --------------------------------------------------------------------------------------


def _restorable(manifest: Manifest) -> list[tuple[Table, TableEntry]]:
    """(table of this metamedia, its backup entry) in foreign-key order; BackupIncompatible otherwise."""
    current = {t.name: t for t in known_tables()}
    unknown = [e.name for e in manifest.tables if e.name not in current]
    changed = [
        e.name for e in manifest.tables if e.name in current and e.columns != columns_of(current[e.name])
    ]
    if unknown or changed:
        raise BackupIncompatible(
            f"the backup (metamedia {manifest.metamedia_version}, schema {manifest.schema_revision}) has "
            f"tables this metamedia {__version__} does not know or shapes differently: "
            f"{', '.join(unknown + changed)}",
            {"unknown_tables": unknown, "changed_tables": changed},
        )
    entries = {e.name: e for e in manifest.tables}
    return [(t, entries[t.name]) for t in known_tables() if t.name in entries]


def _occupied(engine: Engine) -> dict[str, int]:
    """Rows per metamedia table of the target, for the tables that have any."""
    present = set(inspect(engine).get_table_names())
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for table in known_tables():
            if table.name in present:
                rows = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                if rows:
                    out[table.name] = rows
    return out


def _clear(conn: Connection) -> None:
    """Delete every metamedia row, children before parents (and any half-done `migrate` marks)."""
    for table in reversed(known_tables()):
        conn.execute(delete(table))
    conn.execute(delete(progress_table))


def _load_table(
    conn: Connection,
    reader: BackupReader,
    table: Table,
    entry: TableEntry,
    batch_size: int,
    progress: ProgressCallback | None,
) -> None:
    done = 0
    batch: list[dict[str, Any]] = []
    try:
        for row in reader.rows(entry):
            batch.append(row)
            if len(batch) >= batch_size:
                conn.execute(insert(table), batch)
                done += len(batch)
                batch = []
                if progress is not None:
                    progress(table.name, done, entry.rows)
        if batch:
            conn.execute(insert(table), batch)
            done += len(batch)
    except (IntegrityError, DataError) as exc:  # e.g. a NUL character SQLite kept but PostgreSQL rejects
        raise BackupIncompatible(
            f"the target database refused rows of table {table.name} (nothing was restored): "
            f"{str(exc.orig).strip()[:300]}",
            {"table": table.name},
        ) from exc
    if progress is not None:
        progress(table.name, done, entry.rows)


def _prove(engine: Engine, pairs: list[tuple[Table, TableEntry]]) -> list[TableCheck]:
    """Row counts and checksums of the committed target against the manifest."""
    checks = []
    for table, entry in pairs:
        rows, checksum = table_checksum(engine, table)
        checks.append(TableCheck(table.name, entry.rows, rows, entry.checksum, checksum))
    bad = [c for c in checks if not c.ok]
    if bad:
        detail = [
            {
                "table": c.name,
                "backup_rows": c.source_rows,
                "restored_rows": c.target_rows,
                "checksums_equal": c.source_checksum == c.target_checksum,
            }
            for c in bad
        ]
        raise VerificationFailed(
            f"the restored database differs from the backup in {', '.join(c.name for c in bad)}", detail
        )
    return checks
