"""A catalog of one's own as JSON Lines: one object per line, fields named like `MediaRecord`.

The schema is documented in docs/catalog-jsonl.md; keep the two in step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import IngestError
from ..models import MEDIA_TYPES, MediaRecord, Reject
from ..vocab import canonical_genres
from .common import (
    MAX_ID,
    UNREADABLE_ERRORS,
    RowError,
    check_non_negative,
    check_runtime,
    check_vote_average,
    check_year,
    has_invalid_utf8,
    imdb_id,
    keywords,
    one_line,
    open_text,
    parse_date,
    required_title,
    shown,
    text,
    year_of,
)

SOURCE = "jsonl"


def iter_jsonl_records(path: Path) -> Iterator[MediaRecord | Reject]:
    """Stream the records of a JSON Lines catalog; rejects carry their 1-based line number.

    Blank lines are skipped (and counted, so numbers match an editor's line numbers).
    """
    with open_text(path) as stream:
        try:
            for line_number, line in enumerate(stream, start=1):
                if line.strip():
                    yield _line_outcome(line, line_number)
        except UNREADABLE_ERRORS as exc:
            raise IngestError(f"cannot read {path}: {exc}") from exc


def _line_outcome(line: str, line_number: int) -> MediaRecord | Reject:
    if has_invalid_utf8([line]):
        return Reject(SOURCE, line_number, "invalid UTF-8 bytes in line")
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return Reject(SOURCE, line_number, f"invalid JSON: {exc.msg} (column {exc.colno})")
    except RecursionError:
        return Reject(SOURCE, line_number, "invalid JSON: nested too deeply")
    if not isinstance(value, dict):
        return Reject(SOURCE, line_number, f"expected a JSON object, got {type(value).__name__}")
    key = value.get("title") if isinstance(value.get("title"), str) else ""
    try:
        return record_from_json(value)
    except RowError as exc:
        return Reject(SOURCE, line_number, str(exc), key or "")


def record_from_json(obj: dict[str, Any]) -> MediaRecord:
    """One catalog record from a decoded JSON object; unknown fields are ignored, wrong types raise RowError."""
    title = required_title(_string(obj, "title"))
    media_type = _string(obj, "media_type") or "movie"
    if media_type not in MEDIA_TYPES:
        raise RowError(f"media_type {shown(media_type)} is not one of {', '.join(MEDIA_TYPES)}")
    release_date = parse_date(_string(obj, "release_date"))
    year = check_year(_integer(obj, "year"))
    if release_date is not None:
        if year is not None and year != year_of(release_date):
            raise RowError(f"year {year} does not match release_date {release_date!r}")
        year = year_of(release_date)
    return MediaRecord(
        source=SOURCE,
        title=title,
        media_type=media_type,
        original_title=one_line(_string(obj, "original_title")),
        overview=text(_string(obj, "overview")),
        tagline=one_line(_string(obj, "tagline")),
        genres=canonical_genres(_strings(obj, "genres")),
        keywords=keywords(_strings(obj, "keywords")),
        release_date=release_date,
        year=year,
        runtime=check_runtime(_integer(obj, "runtime")),
        vote_average=check_vote_average(_number(obj, "vote_average")),
        vote_count=check_non_negative(_integer(obj, "vote_count"), "vote_count"),
        popularity=check_non_negative(_number(obj, "popularity"), "popularity"),
        language=text(_string(obj, "language")),
        poster_path=text(_string(obj, "poster_path")),
        tmdb_id=_id(obj, "tmdb_id"),
        imdb_id=imdb_id(_string(obj, "imdb_id")),
        movielens_id=_id(obj, "movielens_id"),
        companies=_names(obj, "companies"),
        collection=one_line(_string(obj, "collection")),
        countries=_names(obj, "countries"),
    )


def _names(obj: dict[str, Any], name: str) -> list[str]:
    """Names (companies, countries): trimmed, whitespace-collapsed, blanks and duplicates dropped."""
    return list(dict.fromkeys(" ".join(v.split()) for v in _strings(obj, name) if v.strip()))


def _string(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise RowError(f"{name} must be a string, got {_json_type(value)}")
    return value


def _strings(obj: dict[str, Any], name: str) -> list[str]:
    value = obj.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RowError(f"{name} must be a list of strings")
    return value


def _number(obj: dict[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RowError(f"{name} must be a number, got {_json_type(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise RowError(f"{name} is out of range") from None
    if not math.isfinite(number):
        raise RowError(f"{name} must be a finite number")
    return number


def _integer(obj: dict[str, Any], name: str) -> int | None:
    """A JSON integer; an integral float such as 81.0 is accepted too."""
    value = obj.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        got = value if isinstance(value, float) else _json_type(value)
        raise RowError(f"{name} must be an integer, got {got}")
    if abs(value) > MAX_ID:
        raise RowError(f"{name} is out of range")
    return value


def _id(obj: dict[str, Any], name: str) -> int | None:
    number = _integer(obj, name)
    if number is not None and not 0 < number <= MAX_ID:
        raise RowError(f"{name} must be a positive integer, got {number}")
    return number


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)
