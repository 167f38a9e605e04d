"""Interaction logs for causal learning: the record type, array conversion, and a MovieLens adapter.

MovieLens has ratings, not watch completion, so the adapter derives completion-like outcomes and
ranking features from each rating and what the same user rated *before* it (no look-ahead):

  completion        = (rating - 0.5) / 4.5            (0.5 stars -> 0, 5 stars -> 1)
  genre_match       = the film shares a genre with a film the user rated >= 4 earlier
  familiarity       = the user rated a film with exactly the same genre set earlier
  recency           = the film came out at most 5 years before the rating
  rating_alignment  = the film's mean rating by other users is within 0.5 of the user's earlier mean
  time_of_day       = the rating was made 18:00-23:59 UTC (evening)
  confounders       = log1p(ratings of the film) (popularity), log1p(earlier ratings of the user),
                      the user's earlier mean rating (leniency)
Platform, device, rank position and runtime-vs-session are not in MovieLens and are left out.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..errors import IngestError, InvalidInput
from ..vocab import canonical_genres

_YEAR = re.compile(r"\((\d{4})\)\s*$")


@dataclass(frozen=True)
class Interaction:
    """One logged recommendation outcome: who, what, how much of it they watched, and its features."""

    user_id: str
    item_id: str
    completion: float
    timestamp: float = 0.0
    features: dict[str, float] = field(default_factory=dict)
    confounders: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class InteractionArrays:
    features: np.ndarray
    completion: np.ndarray
    confounders: np.ndarray
    user_ids: np.ndarray
    feature_names: list[str]
    confounder_names: list[str]


def to_arrays(interactions: Iterable[Interaction]) -> InteractionArrays:
    """Stack interactions into matrices; a feature or confounder missing from a row counts as 0."""
    rows = list(interactions)
    if not rows:
        raise InvalidInput("no interactions to learn from")
    feature_names = sorted({f for r in rows for f in r.features})
    confounder_names = sorted({c for r in rows for c in r.confounders})
    x = np.array([[r.features.get(f, 0.0) for f in feature_names] for r in rows], dtype=np.float64)
    z = np.array([[r.confounders.get(c, 0.0) for c in confounder_names] for r in rows], dtype=np.float64)
    y = np.array([r.completion for r in rows], dtype=np.float64)
    users = np.array([r.user_id for r in rows])
    return InteractionArrays(
        x.reshape(len(rows), -1), y, z.reshape(len(rows), -1), users, feature_names, confounder_names
    )


def movielens_interactions(folder: Path) -> list[Interaction]:
    """Interactions derived from MovieLens ratings.csv + movies.csv (see the module docstring)."""
    ratings_path, movies_path = folder / "ratings.csv", folder / "movies.csv"
    if not ratings_path.exists() or not movies_path.exists():
        raise IngestError(f"{folder} lacks ratings.csv or movies.csv")
    genres: dict[str, frozenset[str]] = {}
    years: dict[str, int] = {}
    with movies_path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            genres[row["movieId"]] = frozenset(canonical_genres(row["genres"].split("|")))
            match = _YEAR.search(row["title"].strip())
            if match:
                years[row["movieId"]] = int(match.group(1))
    with ratings_path.open(newline="", encoding="utf-8") as fh:
        ratings = [
            (r["userId"], r["movieId"], float(r["rating"]), float(r["timestamp"])) for r in csv.DictReader(fh)
        ]
    film_count: dict[str, int] = defaultdict(int)
    film_sum: dict[str, float] = defaultdict(float)
    for _, movie, rating, _ in ratings:
        film_count[movie] += 1
        film_sum[movie] += rating
    ratings.sort(key=lambda r: (r[0], r[3]))
    out: list[Interaction] = []
    user = None
    liked: set[str] = set()
    seen_sets: set[frozenset[str]] = set()
    prior_n, prior_sum = 0, 0.0
    for user_id, movie, rating, ts in ratings:
        if user_id != user:
            user, liked, seen_sets, prior_n, prior_sum = user_id, set(), set(), 0, 0.0
        film_genres = genres.get(movie, frozenset())
        when = datetime.fromtimestamp(ts, tz=UTC)
        prior_mean = prior_sum / prior_n if prior_n else 3.5
        others = film_count[movie] - 1
        other_mean = (film_sum[movie] - rating) / others if others else None
        features = {
            "genre_match": float(bool(film_genres & liked)),
            "familiarity": float(film_genres in seen_sets),
            "recency": float(movie in years and 0 <= when.year - years[movie] <= 5),
            "rating_alignment": float(
                other_mean is not None and prior_n > 0 and abs(other_mean - prior_mean) <= 0.5
            ),
            "time_of_day": float(when.hour >= 18),
        }
        confounders = {
            "popularity": math.log1p(film_count[movie]),
            "user_activity": math.log1p(prior_n),
            "user_leniency": prior_mean,
        }
        out.append(Interaction(user_id, movie, (rating - 0.5) / 4.5, ts, features, confounders))
        if rating >= 4.0:
            liked |= film_genres
        if film_genres:
            seen_sets.add(film_genres)
        prior_n += 1
        prior_sum += rating
    return out
