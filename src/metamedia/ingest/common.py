"""Shared pieces of the ingest parsers: opening (plain or gzip) files, streaming CSV rows, field parsers.

Field parsers raise `RowError` with a reason a user can act on; the CSV driver turns it into a `Reject`
and goes on with the next row.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO, TypeVar

from ..errors import IngestError
from ..models import MediaRecord, Reject

# Overviews and keyword lists exceed the csv module's 128 KiB default; the limit is a C long.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

Number = TypeVar("Number", int, float)

GZIP_MAGIC = b"\x1f\x8b"
MAX_ID = 2**63 - 1  # the store keeps ids in SQLite INTEGER (signed 64-bit)
MIN_YEAR, MAX_YEAR = 1800, 2200
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_INTEGRAL = re.compile(r"[+-]?\d+(?:\.0*)?")
_IMDB_ID = re.compile(r"(?:tt)?(\d+)", re.IGNORECASE)
# Errors a truncated or corrupt (gzip) stream raises while being read.
UNREADABLE_ERRORS = (OSError, EOFError, zlib.error, UnicodeError)


class RowError(ValueError):
    """One row cannot be accepted; the message is the reason recorded in its `Reject`."""


@contextmanager
def open_text(path: Path) -> Iterator[TextIO]:
    """Open a UTF-8 text file, gunzipping it when it starts with the gzip magic bytes.

    Invalid UTF-8 is kept as lone surrogates (`surrogateescape`) so that only the rows holding
    it are rejected (see `has_invalid_utf8`), not the whole file.
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"no such file: {path}")
    if not path.is_file():
        raise IngestError(f"not a regular file: {path}")
    try:
        with path.open("rb") as raw:
            magic = raw.read(2)
        if magic == GZIP_MAGIC:
            stream: TextIO = gzip.open(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline="")
        else:
            stream = path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc}") from exc
    with stream:
        yield stream


def has_invalid_utf8(values: list[str]) -> bool:
    """True when a decoded value holds bytes that were not valid UTF-8 (kept as lone surrogates)."""
    return any(any("\udc80" <= ch <= "\udcff" for ch in value) for value in values)


def read_header(path: Path) -> list[str]:
    """The column names on the first CSV row of `path` (empty list for an empty file)."""
    with open_text(path) as stream:
        try:
            header = next(csv.reader(stream), [])
        except (csv.Error, *UNREADABLE_ERRORS) as exc:
            raise IngestError(f"cannot read {path}: {exc}") from exc
    return [name.strip() for name in header]


@dataclass(frozen=True)
class CsvFormat:
    """A CSV catalog format: the columns that identify it and how one row becomes a record."""

    name: str
    required_columns: tuple[str, ...]
    key_columns: tuple[str, ...]  # shown in a Reject so a user can find the row
    parse_row: Callable[[Mapping[str, str]], MediaRecord]

    def matches(self, header: list[str]) -> bool:
        return set(self.required_columns) <= set(header)


def iter_csv_records(path: Path, fmt: CsvFormat) -> Iterator[MediaRecord | Reject]:
    """Stream the records of a CSV file in `fmt`; bad rows become `Reject`s numbered from 1 after the header.

    Blank lines are skipped but keep their number, so numbers stay those of the CSV reader.
    """
    with open_text(path) as stream:
        reader = csv.reader(stream)
        try:
            header = [name.strip() for name in next(reader, [])]
            missing = [c for c in fmt.required_columns if c not in header]
            if missing:
                raise IngestError(f"{path} is not a {fmt.name} file: missing column(s) {', '.join(missing)}")
            row_number = 0
            while True:
                row_number += 1
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield Reject(fmt.name, row_number, f"malformed CSV: {exc}")
                    continue
                if not values:
                    continue
                yield _row_outcome(fmt, header, values, row_number)
        except UNREADABLE_ERRORS as exc:
            raise IngestError(f"cannot read {path}: {exc}") from exc


def _row_outcome(
    fmt: CsvFormat, header: list[str], values: list[str], row_number: int
) -> MediaRecord | Reject:
    fields = dict(zip(header, values, strict=False))
    key = next((fields[c].strip() for c in fmt.key_columns if fields.get(c, "").strip()), "")
    if has_invalid_utf8(values):
        return Reject(
            fmt.name, row_number, "invalid UTF-8 bytes in row", key.encode(errors="replace").decode()
        )
    if len(values) != len(header):
        return Reject(fmt.name, row_number, f"expected {len(header)} columns, got {len(values)}", key)
    try:
        return fmt.parse_row(fields)
    except RowError as exc:
        return Reject(fmt.name, row_number, str(exc), key)


def shown(raw: str | None) -> str:
    """A value quoted for a reject reason, cut short so one huge cell cannot flood a report."""
    raw = raw or ""
    return repr(raw if len(raw) <= 40 else raw[:37] + "...")


def text(value: str | None) -> str | None:
    """Trimmed text with line endings unified to `\\n`; empty means None."""
    if value is None:
        return None
    cleaned = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    return cleaned or None


def one_line(value: str | None) -> str | None:
    """Text with every run of whitespace (newlines included) collapsed to one space; for titles."""
    if value is None:
        return None
    return " ".join(value.split()) or None


def required_title(value: str | None) -> str:
    title = one_line(value)
    if title is None:
        raise RowError("empty title")
    return title


def parse_int(value: str | None, name: str) -> int | None:
    """A whole number, also written as a float ("862.0"); empty means None."""
    raw = (value or "").strip()
    if not raw:
        return None
    if not _INTEGRAL.fullmatch(raw):
        raise RowError(f"bad {name} {shown(raw)}")
    number = int(raw.split(".")[0])
    if abs(number) > MAX_ID:
        raise RowError(f"{name} {shown(raw)} is out of range")
    return number


def parse_id(value: str | None, name: str) -> int | None:
    """A positive id that fits the store's 64-bit integers; empty means None."""
    number = parse_int(value, name)
    if number is not None and not 0 < number <= MAX_ID:
        raise RowError(f"bad {name} {shown(value)}: must be a positive integer")
    return number


def parse_float(value: str | None, name: str) -> float | None:
    raw = (value or "").strip()
    if not raw:
        return None
    try:
        number = float(raw)
    except ValueError:
        raise RowError(f"bad {name} {shown(raw)}") from None
    if not math.isfinite(number):
        raise RowError(f"bad {name} {shown(raw)}")
    return number


def parse_date(value: str | None) -> str | None:
    """An ISO `yyyy-mm-dd` date that exists on the calendar; empty means None."""
    raw = (value or "").strip()
    if not raw:
        return None
    match = _ISO_DATE.fullmatch(raw)
    if match is None:
        raise RowError(f"bad release_date {shown(raw)}")
    year, month, day = (int(part) for part in match.groups())
    try:
        date(year, month, day)
    except ValueError:
        raise RowError(f"bad release_date {shown(raw)}") from None
    check_year(year)
    return raw


def check_year(year: int | None) -> int | None:
    if year is not None and not MIN_YEAR <= year <= MAX_YEAR:
        raise RowError(f"implausible year {year}")
    return year


def year_of(release_date: str | None) -> int | None:
    return int(release_date[:4]) if release_date else None


def check_runtime(runtime: int | None) -> int | None:
    """Minutes; 0 is how the sources say "unknown", so it becomes None."""
    if runtime is not None and runtime < 0:
        raise RowError(f"negative runtime {runtime}")
    return runtime or None


def check_vote_average(value: float | None) -> float | None:
    if value is not None and not 0 <= value <= 10:
        raise RowError(f"vote_average {value} outside 0..10")
    return value


def check_non_negative(value: Number | None, name: str) -> Number | None:
    if value is not None and value < 0:
        raise RowError(f"negative {name} {value}")
    return value


def imdb_id(value: str | None) -> str | None:
    """`tt` plus at least 7 digits ("114709" and "tt0114709" both give "tt0114709"); empty means None."""
    raw = (value or "").strip()
    if not raw:
        return None
    match = _IMDB_ID.fullmatch(raw)
    if match is None or int(match.group(1)) == 0:
        raise RowError(f"bad imdb id {shown(raw)}")
    return "tt" + match.group(1).zfill(7)


def keywords(names: list[str]) -> list[str]:
    """Lower-cased, whitespace-collapsed, de-duplicated keywords in first-seen order."""
    out: list[str] = []
    for name in names:
        keyword = " ".join(name.lower().split())
        if keyword and keyword not in out:
            out.append(keyword)
    return out
