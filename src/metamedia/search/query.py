"""The parsed form of a search query (what `parser.parse_query` returns)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

MAX_QUERY_CHARS = 500
NAME_NOTE = (
    "no catalog item mentions {name!r}: if it is a person, people (cast and crew) are not indexed; "
    "results match its words one by one"
)
PEOPLE_NOTE = (
    "people (cast and crew) are not indexed: {names} was not searched; results match the rest of the query"
)


@dataclass
class ParsedQuery:
    """What a free-text search query asks for: structured filters plus the text left to embed."""

    raw: str
    text: str = ""  # what stays as semantic text once the structured parts are taken out
    genres: list[str] = field(default_factory=list)  # canonical GENRES, order of appearance
    exclude_genres: list[str] = field(default_factory=list)
    moods: list[str] = field(default_factory=list)  # from MOODS
    year_min: int | None = None
    year_max: int | None = None
    runtime_min: int | None = None  # minutes
    runtime_max: int | None = None
    rating_min: float | None = None  # TMDB 0..10 scale
    media_type: str | None = None  # "movie" | "tv"
    similar_to: str | None = None  # "movies like X", "X but darker": X, to resolve to a catalog item
    languages: list[str] = field(default_factory=list)  # original languages (ISO 639-1): "french films"
    countries: list[str] = field(default_factory=list)  # production countries: "british comedy"
    people: list[str] = field(default_factory=list)  # "starring X", "directed by Y": not indexed
    notes: list[str] = field(default_factory=list)  # what the search could not honour, in words

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (the "query" field of the HTTP search response): what `asdict` gives for
        these flat fields (scalars, lists of strings copied), without its recursive walk."""
        return {
            name: (list(v) if isinstance(v, list) else v) for name in _FIELDS for v in (getattr(self, name),)
        }

    def is_empty(self) -> bool:
        """True when there is nothing at all to search on: no text and no filter."""
        return not (self.text or self.genres or self.exclude_genres or self.moods or self.media_type) and all(
            v is None
            for v in (self.year_min, self.year_max, self.runtime_min, self.runtime_max, self.rating_min)
        )


_FIELDS = tuple(f.name for f in fields(ParsedQuery))
