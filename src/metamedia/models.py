"""Plain data types shared by every layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MEDIA_TYPES = ("movie", "tv")


@dataclass
class MediaRecord:
    """One catalog entry as parsed from a source file, before it is merged into the store.

    None means "this source does not say"; empty lists likewise. At least one external id
    (tmdb_id, imdb_id, movielens_id) or a title is needed for the record to be useful.
    """

    source: str
    title: str | None = None
    media_type: str = "movie"
    original_title: str | None = None
    overview: str | None = None
    tagline: str | None = None
    genres: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    release_date: str | None = None  # ISO yyyy-mm-dd
    year: int | None = None
    runtime: int | None = None  # minutes
    vote_average: float | None = None  # 0..10
    vote_count: int | None = None
    popularity: float | None = None
    language: str | None = None
    poster_path: str | None = None
    tmdb_id: int | None = None
    imdb_id: str | None = None  # "tt0114709"
    movielens_id: int | None = None
    companies: list[str] = field(default_factory=list)  # production companies ("Pixar Animation Studios")
    collection: str | None = None  # the franchise it belongs to ("Toy Story Collection")
    countries: list[str] = field(default_factory=list)  # production countries, by name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Reject:
    """A source row that was not accepted, and why."""

    source: str
    row: int  # 1-based data row number in its file (header excluded); 0 when unknown
    reason: str
    key: str = ""  # the row's id or title when it has one


@dataclass
class MediaItem:
    """A catalog item as stored: merged from one or more sources, with a stable id."""

    id: int
    title: str
    media_type: str = "movie"
    original_title: str | None = None
    overview: str | None = None
    tagline: str | None = None
    genres: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    release_date: str | None = None
    year: int | None = None
    runtime: int | None = None
    vote_average: float | None = None
    vote_count: int | None = None
    popularity: float | None = None
    language: str | None = None
    poster_path: str | None = None
    tmdb_id: int | None = None
    imdb_id: str | None = None
    movielens_id: int | None = None
    companies: list[str] = field(default_factory=list)
    collection: str | None = None
    countries: list[str] = field(default_factory=list)
    source: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
