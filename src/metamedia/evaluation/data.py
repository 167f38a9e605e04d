"""Reading MovieLens-format CSVs (ratings, links, movies) into index-aligned arrays."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IngestError
from ..vocab import GENRES, canonical_genres

RATINGS_COLUMNS = ("userId", "movieId", "rating", "timestamp")
YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
# Release-decade buckets of the fallback content vector: before 1950, the 1950s ... 2000s, 2010 on.
YEAR_BUCKETS = (1950, 1960, 1970, 1980, 1990, 2000, 2010)


@dataclass(frozen=True)
class RatingsLog:
    """All ratings as parallel arrays; ``users``/``items`` index into ``user_ids``/``item_ids``."""

    user_ids: np.ndarray  # MovieLens userId per user index
    item_ids: np.ndarray  # MovieLens movieId per item index
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    dropped_unlinked: int  # ratings whose movieId is missing from links.csv


@contextmanager
def _csv_rows(path: Path, required: tuple[str, ...]) -> Iterator[csv.DictReader[str]]:
    """A DictReader over ``path`` after checking the header has the ``required`` columns."""
    if not path.is_file():
        raise IngestError(f"file not found: {path}")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise IngestError(f"{path.name}: missing column(s) {', '.join(missing)}")
        yield reader


def read_linked_movie_ids(links_csv: Path) -> set[int]:
    """The movieIds listed in a MovieLens links.csv (the join key to the catalog)."""
    with _csv_rows(links_csv, ("movieId",)) as reader:
        return {int(row["movieId"]) for row in reader if (row["movieId"] or "").strip().isdigit()}


def load_ratings(ratings_csv: Path, links_csv: Path) -> RatingsLog:
    """Ratings joined to links.csv; rows with an unlinked movieId are dropped and counted."""
    linked = read_linked_movie_ids(links_csv)
    user_col: list[int] = []
    item_col: list[int] = []
    rating_col: list[float] = []
    time_col: list[float] = []
    dropped = 0
    with _csv_rows(ratings_csv, RATINGS_COLUMNS) as reader:
        for line, row in enumerate(reader, start=2):
            try:
                user, movie = int(row["userId"]), int(row["movieId"])
                rating, when = float(row["rating"]), float(row["timestamp"])
            except (TypeError, ValueError) as exc:
                raise IngestError(f"{ratings_csv.name}:{line}: unreadable row {row!r}") from exc
            if movie not in linked:
                dropped += 1
                continue
            user_col.append(user)
            item_col.append(movie)
            rating_col.append(rating)
            time_col.append(when)
    if not user_col:
        raise IngestError(f"{ratings_csv.name}: no ratings joined to {links_csv.name}")
    user_ids, users = np.unique(np.array(user_col, dtype=np.int64), return_inverse=True)
    item_ids, items = np.unique(np.array(item_col, dtype=np.int64), return_inverse=True)
    return RatingsLog(
        user_ids=user_ids,
        item_ids=item_ids,
        users=users.astype(np.int64),
        items=items.astype(np.int64),
        ratings=np.array(rating_col, dtype=np.float32),
        timestamps=np.array(time_col, dtype=np.float64),
        dropped_unlinked=dropped,
    )


def load_movie_genres_and_years(movies_csv: Path) -> tuple[dict[int, list[str]], dict[int, int]]:
    """Canonical genres and release year per movieId from a MovieLens movies.csv."""
    genres: dict[int, list[str]] = {}
    years: dict[int, int] = {}
    with _csv_rows(movies_csv, ("movieId", "title", "genres")) as reader:
        for row in reader:
            raw_id = (row["movieId"] or "").strip()
            if not raw_id.isdigit():
                continue
            movie = int(raw_id)
            genres[movie] = canonical_genres((row["genres"] or "").split("|"))
            match = YEAR_IN_TITLE.search((row["title"] or "").strip())
            if match:
                years[movie] = int(match.group(1))
    return genres, years


def fallback_item_vectors(genres: dict[int, list[str]], years: dict[int, int]) -> dict[int, np.ndarray]:
    """Stand-in content vectors when the catalog's embeddings are not supplied.

    Genre multi-hot over the canonical GENRES (each genre 1/sqrt(n_genres), so the
    block has unit length) concatenated with a one-hot release-decade bucket weighted
    0.5, then L2-normalised. Movies with neither genres nor a year get a zero vector.
    """
    width = len(GENRES) + len(YEAR_BUCKETS) + 1
    column = {g: i for i, g in enumerate(GENRES)}
    out: dict[int, np.ndarray] = {}
    for movie in sorted(set(genres) | set(years)):
        vector = np.zeros(width, dtype=np.float32)
        movie_genres = genres.get(movie, [])
        for g in movie_genres:
            vector[column[g]] = 1.0 / np.sqrt(len(movie_genres))
        if movie in years:
            bucket = int(np.searchsorted(YEAR_BUCKETS, years[movie], side="right"))
            vector[len(GENRES) + bucket] = 0.5
        norm = float(np.linalg.norm(vector))
        out[movie] = vector / norm if norm > 0 else vector
    return out
