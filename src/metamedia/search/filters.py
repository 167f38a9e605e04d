"""A search request's constraints: explicit parameters checked, merged with the parsed ones, and turned
into the vector store's filter."""

from __future__ import annotations

import math
from typing import Any

from ..errors import InvalidQuery
from ..vocab import GENRES, canonical_genres
from .query import ParsedQuery

MIN_VOTES_WITH_RATING_FILTER = 20


def validate_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not (low <= value <= high) or (value is not None and math.isnan(value)):
        raise InvalidQuery(f"{name} must be between {low:g} and {high:g}, got {value}")


def resolve_genres(labels: list[str] | None) -> list[str]:
    """Explicit genre parameters, accepting source spellings (sci-fi) and rejecting unknown ones."""
    out: list[str] = []
    for label in labels or []:
        mapped = canonical_genres([label])
        if not mapped:
            raise InvalidQuery(f"unknown genre {label!r}", {"valid": list(GENRES)})
        out += [g for g in mapped if g not in out]
    return out


def build_filter(
    parsed: ParsedQuery, explicit_genres: list[str], filters: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The vector-store filter and the effective constraint values (parsed, overridden by explicit ones)."""
    eff: dict[str, Any] = {
        "year_min": filters.get("year_min") if filters.get("year_min") is not None else parsed.year_min,
        "year_max": filters.get("year_max") if filters.get("year_max") is not None else parsed.year_max,
        "rating_min": filters.get("rating_min")
        if filters.get("rating_min") is not None
        else parsed.rating_min,
        "runtime_min": filters.get("runtime_min")
        if filters.get("runtime_min") is not None
        else parsed.runtime_min,
        "runtime_max": filters.get("runtime_max")
        if filters.get("runtime_max") is not None
        else parsed.runtime_max,
        "media_type": filters.get("media_type") or parsed.media_type,
    }
    if eff["year_min"] is not None and eff["year_max"] is not None and eff["year_min"] > eff["year_max"]:
        raise InvalidQuery(f"year_min {eff['year_min']} is after year_max {eff['year_max']}")
    if (
        eff["runtime_min"] is not None
        and eff["runtime_max"] is not None
        and eff["runtime_min"] > eff["runtime_max"]
    ):
        raise InvalidQuery(f"runtime_min {eff['runtime_min']} is above runtime_max {eff['runtime_max']}")
    must: list[dict[str, Any]] = []
    if eff["year_min"] is not None or eff["year_max"] is not None:
        rng = {k: v for k, v in (("gte", eff["year_min"]), ("lte", eff["year_max"])) if v is not None}
        must.append({"field": "year", "range": rng})
    if eff["rating_min"] is not None:
        must.append({"field": "rating", "range": {"gte": float(eff["rating_min"])}})
        must.append({"field": "votes", "range": {"gte": MIN_VOTES_WITH_RATING_FILTER}})
    if eff["runtime_min"] is not None or eff["runtime_max"] is not None:
        rng = {k: v for k, v in (("gte", eff["runtime_min"]), ("lte", eff["runtime_max"])) if v is not None}
        must.append({"field": "runtime", "range": rng})
    if eff["media_type"]:
        must.append({"field": "type", "eq": eff["media_type"]})
    for g in explicit_genres:
        must.append({"field": "genres", "in": [g]})
    must_not = [{"field": "genres", "in": list(parsed.exclude_genres)}] if parsed.exclude_genres else []
    if not must and not must_not:
        return None, eff
    flt: dict[str, Any] = {}
    if must:
        flt["must"] = must
    if must_not:
        flt["must_not"] = must_not
    return flt, eff
