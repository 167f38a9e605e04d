"""Read any supported catalog file into a stream of `MediaRecord`s and `Reject`s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import IngestError
from ..models import MediaRecord, Reject
from .common import iter_csv_records, open_text, read_header
from .detect import CSV_FORMATS, FORMATS, detect_format
from .jsonl import iter_jsonl_records
from .movielens import RATINGS_MESSAGE

__all__ = ["FORMATS", "detect_format", "read_records"]


def read_records(path: Path, fmt: str | None = None) -> Iterator[MediaRecord | Reject]:
    """Stream the rows of a catalog file in file order: a `MediaRecord` per good row, a `Reject` per bad one.

    `fmt` (one of FORMATS) defaults to what `detect_format` finds. A bad row never raises; a file
    that cannot be read, is not in `fmt`, or holds ratings (not catalog items) raises IngestError,
    before the first row for everything known up front.
    """
    path = Path(path)
    if fmt is None:
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if fmt == "movielens_ratings":
        raise IngestError(RATINGS_MESSAGE)
    if fmt == "jsonl":
        with open_text(path):  # a missing or unreadable file fails here, not at the first row
            pass
        return iter_jsonl_records(path)
    csv_format = CSV_FORMATS[fmt]
    header = read_header(path)
    missing = [column for column in csv_format.required_columns if column not in header]
    if missing:
        raise IngestError(f"{path} is not a {fmt} file: missing column(s) {', '.join(missing)}")
    return iter_csv_records(path, csv_format)
