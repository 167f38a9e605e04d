"""Deterministic merge of what several sources say about one item.

Every source row is kept (table item_sources); the item row is recomputed from all of them,
field by field, taking the first non-empty value in a fixed source priority. The result does not
depend on the order files are ingested in, and re-ingesting a file changes nothing.
"""

from __future__ import annotations

from typing import Any

from ..models import MediaRecord
from ..store.base import SourceRow

# Lower wins. A user's own JSON Lines catalog overrides the public datasets.
SOURCE_PRIORITY: dict[str, int] = {
    "jsonl": 0,
    "tmdb5000": 1,
    "movies_metadata": 2,
    "tmdb_keywords": 3,
    "movielens_movies": 4,
    "movielens_links": 5,
}

MERGED_FIELDS = (
    "title",
    "media_type",
    "original_title",
    "overview",
    "tagline",
    "genres",
    "keywords",
    "release_date",
    "year",
    "runtime",
    "vote_average",
    "vote_count",
    "popularity",
    "language",
    "poster_path",
    "tmdb_id",
    "imdb_id",
    "movielens_id",
    "companies",
    "collection",
    "countries",
)


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def record_data(record: MediaRecord) -> dict[str, Any]:
    """The non-empty fields of a parsed record, as stored in item_sources.data."""
    data = {k: (list(v) if isinstance(v, list) else v) for k, v in vars(record).items() if k != "source"}
    if not record.title:
        data.pop("media_type", None)  # id-only rows (links, keywords) say nothing about the type
    return {k: v for k, v in data.items() if not is_empty(v)}


def combine_data(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Fill the empty fields of `first` from `second` (duplicate rows within one file)."""
    out = dict(first)
    for key, value in second.items():
        if is_empty(out.get(key)):
            out[key] = value
    return out


def _order(row: SourceRow) -> tuple[int, str]:
    return SOURCE_PRIORITY.get(row.source, 99), row.origin


def merge_sources(rows: list[SourceRow]) -> dict[str, Any] | None:
    """The item fields implied by its source rows, or None when no source gives a title."""
    ordered = sorted(rows, key=_order)
    merged: dict[str, Any] = {}
    for name in MERGED_FIELDS:
        for row in ordered:
            value = row.data.get(name)
            if not is_empty(value):
                merged[name] = value
                break
    if is_empty(merged.get("title")):
        return None
    merged.setdefault("media_type", "movie")
    merged.setdefault("genres", [])
    merged.setdefault("keywords", [])
    if merged.get("release_date") and not merged.get("year"):
        merged["year"] = int(str(merged["release_date"])[:4])
    merged["source"] = ",".join(sorted({r.source for r in rows}, key=lambda s: SOURCE_PRIORITY.get(s, 99)))
    return merged


def differs(merged: dict[str, Any], existing: dict[str, Any]) -> bool:
    """True when storing `merged` would change the existing row."""
    for name in (*MERGED_FIELDS, "source"):
        a, b = merged.get(name), existing.get(name)
        if is_empty(a) and is_empty(b):
            continue
        if a != b:
            return True
    return False
