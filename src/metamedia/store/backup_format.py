"""The backup file format (docs/backup-format.md): manifest, backend-neutral row encoding, row checksums.

A backup is one tar file (gzip-compressed only when named .gz/.tgz) holding `manifest.json` first,
then `tables/<table>.jsonl.gz` per table: one JSON object per row, column name to value. The per-table checksum is the one
`metamedia migrate` verifies with (`migrate._canonical`), so a backup, its source and any database
restored from it can be compared table by table.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import io
import json
import math
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import JSON, BigInteger, Boolean, Column, Float, LargeBinary, MetaData, String, Table, Text
from sqlalchemy.types import Integer, TypeEngine

from ..errors import InvalidInput, MetamediaError
from .migrate import _canonical

FORMAT = "metamedia-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
# Neutral column kinds and the SQLAlchemy type each one stands for when only the manifest is known.
KIND_TYPES: dict[str, type[TypeEngine[Any]]] = {
    "integer": BigInteger,
    "float": Float,
    "boolean": Boolean,
    "text": Text,
    "bytes": LargeBinary,
    "json": JSON,
}


class BackupCorrupt(MetamediaError):
    """The backup file is damaged, truncated, tampered with or not a metamedia backup."""

    status_code = 422
    exit_code = 7


class BackupIncompatible(InvalidInput):
    """The backup is intact but this version of metamedia cannot restore it."""


@dataclass
class TableEntry:
    """One table in the manifest: what its file must hold."""

    name: str
    rows: int
    checksum: str
    columns: list[dict[str, str]]  # [{"name": ..., "type": kind}] in the table's column order
    file: str
    sha256: str = ""
    size: int = 0  # bytes of the table file


@dataclass
class Manifest:
    """manifest.json: where the backup came from and, per table, its row count and checksum."""

    metamedia_version: str
    created_at: str
    source_backend: str
    schema_revision: str | None
    tables: list[TableEntry] = field(default_factory=list)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Manifest:
        """Parse and check manifest.json; BackupCorrupt / BackupIncompatible when it is not usable."""
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise BackupCorrupt(f"{where} is not a metamedia backup (manifest has no format {FORMAT!r})")
            if data.get("format_version") != FORMAT_VERSION:
                raise BackupIncompatible(
                    f"{where} is backup format version {data.get('format_version')!r}; "
                    f"this metamedia reads version {FORMAT_VERSION}"
                )
            tables = [TableEntry(**t) for t in data.pop("tables")]
            manifest = cls(**data, tables=tables)
            for t in manifest.tables:
                for col in t.columns:
                    if col["type"] not in KIND_TYPES:
                        raise BackupCorrupt(
                            f"{where}: table {t.name} has a column of unknown type {col['type']!r}"
                        )
            return manifest
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BackupCorrupt(f"{where} has an unreadable manifest: {exc}") from exc


def column_kind(table: Table, column: Column[Any]) -> str:
    """The neutral kind of a column (integer, float, boolean, text, bytes, json)."""
    t = column.type
    for kind, cls in (("bytes", LargeBinary), ("boolean", Boolean), ("float", Float), ("json", JSON)):
        if isinstance(t, cls):
            return kind
    if isinstance(t, Integer):
        return "integer"
    if isinstance(t, String):
        return "text"
    raise MetamediaError(f"column {table.name}.{column.name} has type {t!r}, which backups cannot hold yet")


def columns_of(table: Table) -> list[dict[str, str]]:
    return [{"name": c.name, "type": column_kind(table, c)} for c in table.columns]


def manifest_table(entry: TableEntry) -> Table:
    """A stand-in Table built from the manifest alone, so a file is checked without knowing the schema."""
    cols = [Column(c["name"], KIND_TYPES[c["type"]]()) for c in entry.columns]
    return Table(entry.name, MetaData(), *cols)


def encode_row(kinds: list[tuple[str, str]], row: dict[str, Any]) -> str:
    """One row as one JSON line (no newline): bytes base64, non-finite floats as strings."""
    out: dict[str, Any] = {}
    for name, kind in kinds:
        value = row[name]
        if value is None:
            out[name] = None
        elif kind == "bytes":
            out[name] = base64.b64encode(bytes(value)).decode("ascii")
        elif kind == "float":
            number = float(value)
            out[name] = number if math.isfinite(number) else _non_finite_name(number)
        elif kind == "boolean":
            out[name] = bool(value)
        else:
            out[name] = value
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _non_finite_name(number: float) -> str:
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def decode_row(kinds: list[tuple[str, str]], line: str) -> dict[str, Any]:
    """The row values of one JSON line; ValueError/TypeError when the line does not fit the columns."""
    data = json.loads(line)
    if not isinstance(data, dict) or set(data) != {name for name, _ in kinds}:
        raise ValueError(f"expected an object with exactly the columns {[name for name, _ in kinds]}")
    row: dict[str, Any] = {}
    for name, kind in kinds:
        value = data[name]
        if value is None or kind == "json":
            row[name] = value
        elif kind == "bytes" and isinstance(value, str):
            row[name] = base64.b64decode(value, validate=True)
        elif kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            row[name] = float(value)
        elif kind == "float" and isinstance(value, str) and value in NON_FINITE:
            row[name] = NON_FINITE[value]
        elif kind == "boolean" and isinstance(value, bool):
            row[name] = value
        elif kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
            row[name] = value
        elif kind == "text" and isinstance(value, str):
            row[name] = value
        else:
            raise TypeError(f"column {name} ({kind}) cannot hold {json.dumps(value)[:40]}")
    return row


class RowChecksum:
    """Order-independent checksum of rows: the sum of per-row SHA-256 modulo 2**256 (as `table_checksum`)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.total = 0
        self.rows = 0

    def add(self, row: dict[str, Any]) -> None:
        digest = hashlib.sha256(_canonical(self.table, row)).digest()
        self.total = (self.total + int.from_bytes(digest, "big")) % (1 << 256)
        self.rows += 1

    @property
    def hexdigest(self) -> str:
        return f"{self.total:064x}"


# Everything that reading a damaged tar/gzip/JSON file can raise.
READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    tarfile.TarError,
    zlib.error,
    binascii.Error,
)


class _Hashing(io.RawIOBase):
    """Reads through a tar member and hashes every byte on the way."""

    def __init__(self) -> None:
        self.inner: IO[bytes] = io.BytesIO()
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.sha256.update(data)
        return len(data)


class BackupReader:
    """Opens a backup file for reading: the manifest, then each table's rows streamed and decoded."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InvalidInput(f"no backup file {self.path}")
        try:
            self.tar = tarfile.open(self.path, mode="r:*")
        except READ_ERRORS as exc:
            raise BackupCorrupt(f"{self.path} is not a metamedia backup (not a tar file)") from exc
        try:
            manifest = self.tar.extractfile(MANIFEST)
            if manifest is None:
                raise KeyError(MANIFEST)
            self.manifest = Manifest.from_json(manifest.read(), str(self.path))
        except MetamediaError:
            self.tar.close()
            raise
        except READ_ERRORS as exc:
            self.tar.close()
            raise BackupCorrupt(f"{self.path} is damaged or truncated: {_reason(exc)}") from exc

    def close(self) -> None:
        self.tar.close()

    def __enter__(self) -> BackupReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self, entry: TableEntry, hashing: _Hashing | None = None) -> Iterator[dict[str, Any]]:
        """Decoded rows of one table, in file order; BackupCorrupt (naming the line) on any damage."""
        kinds = [(c["name"], c["type"]) for c in entry.columns]
        line_no = 0
        try:
            member = self.tar.extractfile(entry.file)
            if member is None:
                raise KeyError(f"{entry.file} is not a file")
            source: IO[bytes] = member
            if hashing is not None:
                hashing.inner = member
                source = io.BufferedReader(hashing)
            with gzip.open(source, "rt", encoding="utf-8") as lines:
                for line in lines:
                    line_no += 1
                    yield decode_row(kinds, line)
            if hashing is not None:
                source.read()  # the rest of the member, so the sha256 covers every byte
        except READ_ERRORS as exc:
            problem = f"{entry.file} near line {max(line_no, 1)}: {_reason(exc)}"
            raise BackupCorrupt(
                f"{self.path}: table {entry.name} is damaged ({problem})",
                {"table": entry.name, "problem": problem},
            ) from exc

    def check_table(self, entry: TableEntry) -> list[str]:
        """Read one table file completely; what disagrees with the manifest (empty: all is well)."""
        hashing = _Hashing()
        checksum = RowChecksum(manifest_table(entry))
        try:
            for row in self.rows(entry, hashing):
                checksum.add(row)
        except BackupCorrupt as exc:
            return [str(exc.detail["problem"])]  # type: ignore[index]
        problems = []
        if checksum.rows != entry.rows:
            problems.append(f"{checksum.rows} rows, the manifest says {entry.rows}")
        if checksum.hexdigest != entry.checksum:
            problems.append("row checksum differs from the manifest")
        if hashing.sha256.hexdigest() != entry.sha256:
            problems.append("file sha256 differs from the manifest")
        return problems


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "..."


def write_table_file(path: Path, kinds: list[tuple[str, str]], rows: Iterator[dict[str, Any]]) -> None:
    """Write encoded rows as gzipped JSON lines (rows are consumed as they come)."""
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        for row in rows:
            out.write(encode_row(kinds, row))
            out.write("\n")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
