"""TMDB-derived catalogs: the TMDB 5000 export, The Movies Dataset's movies_metadata and keywords files."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping
from typing import Any

from ..models import MediaRecord
from ..vocab import canonical_genres
from .common import (
    CsvFormat,
    RowError,
    check_non_negative,
    check_runtime,
    check_vote_average,
    imdb_id,
    keywords,
    one_line,
    parse_date,
    parse_float,
    parse_id,
    parse_int,
    required_title,
    text,
    year_of,
)

# Malformed literals can also be absurdly nested or huge; none of that may escape a row.
_LITERAL_ERRORS = (ValueError, SyntaxError, TypeError, MemoryError, RecursionError)


def names_from_json(raw: str) -> list[str] | None:
    """The `name`s of a JSON list of `{id, name}` objects (TMDB 5000); None when malformed."""
    try:
        value = json.loads(raw) if raw.strip() else []
    except _LITERAL_ERRORS:
        return None
    return _names(value)


def names_from_literal(raw: str) -> list[str] | None:
    """The `name`s of a Python-literal list of dicts (The Movies Dataset); None when malformed.

    Only `ast.literal_eval` reads these cells: it evaluates literals and nothing else.
    """
    try:
        value = ast.literal_eval(raw) if raw.strip() else []
    except _LITERAL_ERRORS:
        return None
    return _names(value)


def _names(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    names: list[str] = []
    for entry in value:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            return None
        names.append(name)
    return names


def _tmdb_row(
    fields: Mapping[str, str], source: str, read_names: Callable[[str], list[str] | None]
) -> MediaRecord:
    """The columns TMDB 5000 and movies_metadata share; a malformed genres cell only drops the genres."""
    tmdb_id = parse_id(fields["id"], "tmdb id")
    if tmdb_id is None:
        raise RowError("missing tmdb id")
    release_date = parse_date(fields.get("release_date"))
    vote_count = parse_int(fields.get("vote_count"), "vote_count")
    check_non_negative(vote_count, "vote_count")
    vote_average = check_vote_average(parse_float(fields.get("vote_average"), "vote_average"))
    return MediaRecord(
        source=source,
        title=required_title(fields["title"]),
        original_title=one_line(fields.get("original_title")),
        overview=text(fields.get("overview")),
        tagline=one_line(fields.get("tagline")),
        genres=canonical_genres(read_names(fields["genres"]) or []),
        release_date=release_date,
        year=year_of(release_date),
        runtime=check_runtime(parse_int(fields.get("runtime"), "runtime")),
        # TMDB writes 0.0 for "nobody voted"; that is no rating, not a zero one.
        vote_average=None if vote_count == 0 else vote_average,
        vote_count=vote_count,
        popularity=check_non_negative(parse_float(fields.get("popularity"), "popularity"), "popularity"),
        language=text(fields.get("original_language")),
        tmdb_id=tmdb_id,
        companies=_clean_names(read_names(fields.get("production_companies") or "[]")),
        countries=_clean_names(read_names(fields.get("production_countries") or "[]")),
    )


def _clean_names(names: list[str] | None) -> list[str]:
    """Company or country names, whitespace-collapsed, duplicates dropped; a malformed cell gives none."""
    return list(dict.fromkeys(" ".join(n.split()) for n in names or [] if n.strip()))


def _collection_name(raw: str | None) -> str | None:
    """The name in The Movies Dataset's belongs_to_collection cell (a Python-literal dict)."""
    if not raw or not raw.strip():
        return None
    try:
        value = ast.literal_eval(raw)
    except _LITERAL_ERRORS:
        return None
    name = value.get("name") if isinstance(value, dict) else None
    return " ".join(name.split()) or None if isinstance(name, str) else None


def parse_tmdb5000_row(fields: Mapping[str, str]) -> MediaRecord:
    record = _tmdb_row(fields, "tmdb5000", names_from_json)
    record.keywords = keywords(names_from_json(fields["keywords"]) or [])
    return record


def parse_movies_metadata_row(fields: Mapping[str, str]) -> MediaRecord:
    record = _tmdb_row(fields, "movies_metadata", names_from_literal)
    record.imdb_id = imdb_id(fields.get("imdb_id"))
    record.poster_path = text(fields.get("poster_path"))
    record.collection = _collection_name(fields.get("belongs_to_collection"))
    return record


def parse_tmdb_keywords_row(fields: Mapping[str, str]) -> MediaRecord:
    tmdb_id = parse_id(fields["id"], "tmdb id")
    if tmdb_id is None:
        raise RowError("missing tmdb id")
    names = names_from_literal(fields["keywords"])
    if names is None:
        raise RowError("bad keywords list")
    return MediaRecord(source="tmdb_keywords", title=None, keywords=keywords(names), tmdb_id=tmdb_id)


TMDB5000 = CsvFormat(
    name="tmdb5000",
    required_columns=("id", "title", "genres", "keywords", "overview", "release_date"),
    key_columns=("id", "title"),
    parse_row=parse_tmdb5000_row,
)
MOVIES_METADATA = CsvFormat(
    name="movies_metadata",
    required_columns=("id", "imdb_id", "title", "genres", "overview", "poster_path", "release_date"),
    key_columns=("id", "imdb_id", "title"),
    parse_row=parse_movies_metadata_row,
)
TMDB_KEYWORDS = CsvFormat(
    name="tmdb_keywords",
    required_columns=("id", "keywords"),
    key_columns=("id",),
    parse_row=parse_tmdb_keywords_row,
)
