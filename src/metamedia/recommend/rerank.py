"""Final list shaping: drop consumed and disallowed items, diversify, and say why each item is there."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput
from .preference import PreferenceVector

Diversity = Literal["none", "mmr", "genre_cap"]

GENRE_PLURALS: dict[str, str] = {
    "Action": "action films",
    "Adventure": "adventure films",
    "Animation": "animated films",
    "Comedy": "comedies",
    "Crime": "crime films",
    "Documentary": "documentaries",
    "Drama": "dramas",
    "Family": "family films",
    "Fantasy": "fantasy films",
    "History": "historical films",
    "Horror": "horror films",
    "Music": "music films",
    "Mystery": "mysteries",
    "Romance": "romances",
    "Science Fiction": "science fiction films",
    "TV Movie": "TV movies",
    "Thriller": "thrillers",
    "War": "war films",
    "Western": "westerns",
}


@dataclass(frozen=True)
class Candidate:
    """An item proposed by a recommender, with what re-ranking needs to know about it."""

    item_id: int
    score: float
    vector: np.ndarray | None = None  # unit-length content vector
    genres: tuple[str, ...] = ()
    title: str = ""
    rating: float | None = None  # average rating on 0..10
    runtime: int | None = None  # minutes
    media_type: str = "movie"
    trending: bool = False  # among this week's most popular


@dataclass(frozen=True)
class Constraints:
    """Business rules a recommended item must pass; None means no rule. Unknown values fail a rule."""

    min_rating: float | None = None
    min_runtime: int | None = None
    max_runtime: int | None = None
    media_types: tuple[str, ...] | None = None

    def allows(self, candidate: Candidate) -> bool:
        """True when the candidate passes every rule that is set."""
        if self.min_rating is not None and (candidate.rating is None or candidate.rating < self.min_rating):
            return False
        if self.min_runtime is not None and (
            candidate.runtime is None or candidate.runtime < self.min_runtime
        ):
            return False
        if self.max_runtime is not None and (
            candidate.runtime is None or candidate.runtime > self.max_runtime
        ):
            return False
        return self.media_types is None or candidate.media_type in self.media_types


@dataclass(frozen=True)
class HistoryItem:
    """Something the user interacted with, for "because you watched ..." explanations."""

    item_id: int
    title: str
    vector: np.ndarray | None
    strength: float = 1.0


@dataclass(frozen=True)
class RankedItem:
    """One line of the final list."""

    item_id: int
    score: float
    explanation: str


class Explainer:
    """Picks the most specific true reason for a recommendation, in this order:

    0. "people who liked <title> also liked this": given in ``co_liked`` (collaborative algorithms,
       see ``co_liked_reasons``);
    1. "because you watched <title>": the liked history item most similar to the candidate
       (cosine >= ``similar_threshold``);
    2. "you finish most <genre>": the user finished >= ``finish_threshold`` of at least
       ``min_watches`` watches of one of the candidate's genres;
    3. "popular this week": the candidate is trending;
    4. "you like <genre>": learned affinity >= ``affinity_threshold`` for one of its genres;
    5. otherwise "recommended for you".
    """

    def __init__(
        self,
        history: Sequence[HistoryItem] = (),
        profile: PreferenceVector | None = None,
        *,
        similar_threshold: float = 0.5,
        finish_threshold: float = 0.7,
        min_watches: int = 3,
        affinity_threshold: float = 0.3,
        co_liked: Mapping[int, str] | None = None,
    ) -> None:
        self.co_liked = co_liked or {}
        liked = [h for h in history if h.strength > 0 and h.vector is not None]
        self._titles = [h.title for h in liked]
        self._vectors = np.stack([np.asarray(h.vector, dtype=np.float32) for h in liked]) if liked else None
        self.profile = profile
        self.similar_threshold = similar_threshold
        self.finish_threshold = finish_threshold
        self.min_watches = min_watches
        self.affinity_threshold = affinity_threshold

    def explain(self, candidate: Candidate) -> str:
        """A short human-readable reason for recommending ``candidate``."""
        if candidate.item_id in self.co_liked:
            return self.co_liked[candidate.item_id]
        if self._vectors is not None and candidate.vector is not None:
            similarity = self._vectors @ np.asarray(candidate.vector, dtype=np.float32)
            best = int(np.argmax(similarity))
            if similarity[best] >= self.similar_threshold:
                return f"because you watched {self._titles[best]}"
        if self.profile is not None:
            for genre in candidate.genres:
                rate = self.profile.genre_finish_rate(genre)
                enough = self.profile.genre_watch_count(genre) >= self.min_watches
                if rate is not None and enough and rate >= self.finish_threshold:
                    return f"you finish most {GENRE_PLURALS.get(genre, genre.lower())}"
        if candidate.trending:
            return "popular this week"
        if self.profile is not None:
            liked = [(self.profile.genre_affinity.get(g, 0.0), g) for g in candidate.genres]
            if liked and max(liked)[0] >= self.affinity_threshold:
                return f"you like {GENRE_PLURALS.get(max(liked)[1], max(liked)[1].lower())}"
        return "recommended for you"


def liked_columns(matrix: sp.csr_matrix) -> sp.csc_matrix:
    """Users x items 0/1 likes (confidence above 0.5) by column, the input of ``co_liked_reasons``
    (built once per fit)."""
    return sp.csc_matrix((matrix > 0.5).astype(np.float32))


def co_liked_reasons(
    likes: sp.csc_matrix,
    position: Mapping[int, int],
    history: Sequence[HistoryItem],
    candidate_ids: Sequence[int],
    *,
    min_users: int = 3,
) -> dict[int, str]:
    """ "people who liked <title> also liked this" per candidate: the user's liked history item that
    the most users (at least ``min_users``) liked together with the candidate.

    ``likes`` is ``liked_columns`` of the users x items confidence (1 + strength) / 2 matrix.
    """
    liked = [(position[h.item_id], h.title) for h in history if h.strength > 0 and h.item_id in position]
    wanted = [(c, position[c]) for c in candidate_ids if c in position]
    if not liked or not wanted or likes.nnz == 0:
        return {}
    together = (
        likes[:, [column for column, _ in liked]].T @ likes[:, [column for _, column in wanted]]
    ).toarray()
    out = {}
    for j, (item_id, _) in enumerate(wanted):
        best = int(np.argmax(together[:, j]))
        if together[best, j] >= min_users:
            out[item_id] = f"people who liked {liked[best][1]} also liked this"
    return out


def rerank(
    candidates: Sequence[Candidate],
    k: int,
    *,
    consumed: Collection[int] = frozenset(),
    constraints: Constraints | None = None,
    diversity: Diversity = "none",
    mmr_lambda: float = 0.8,
    max_genre_share: float = 0.5,
    explainer: Explainer | None = None,
) -> list[RankedItem]:
    """The final k items: consumed and disallowed candidates dropped, diversified, explained.

    ``mmr``: maximal marginal relevance, each pick maximises
    mmr_lambda * relevance - (1 - mmr_lambda) * max cosine to the items already picked
    (relevance = score min-max scaled over the candidates). ``genre_cap``: in score order,
    skip an item once any of its genres fills ceil(max_genre_share * k) slots; if that leaves
    the list short, the best skipped items fill it.
    """
    if k <= 0:
        raise InvalidInput(f"k must be positive, got {k}")
    if not 0.0 <= mmr_lambda <= 1.0:
        raise InvalidInput(f"mmr_lambda must be in [0, 1], got {mmr_lambda}")
    if not 0.0 < max_genre_share <= 1.0:
        raise InvalidInput(f"max_genre_share must be in (0, 1], got {max_genre_share}")
    rules = constraints or Constraints()
    seen: set[int] = set()
    pool: list[Candidate] = []
    for candidate in sorted(candidates, key=lambda c: (-c.score, c.item_id)):
        if candidate.item_id in consumed or candidate.item_id in seen or not rules.allows(candidate):
            continue
        seen.add(candidate.item_id)
        pool.append(candidate)
    if diversity == "mmr":
        chosen = _mmr(pool, k, mmr_lambda)
    elif diversity == "genre_cap":
        chosen = _genre_cap(pool, k, max(1, math.ceil(max_genre_share * k)))
    elif diversity == "none":
        chosen = pool[:k]
    else:
        raise InvalidInput(f"unknown diversity {diversity!r}; use 'none', 'mmr' or 'genre_cap'")
    reasons = explainer or Explainer()
    return [RankedItem(c.item_id, c.score, reasons.explain(c)) for c in chosen]


def _mmr(pool: list[Candidate], k: int, trade_off: float) -> list[Candidate]:
    if not pool:
        return []
    scores = np.array([c.score for c in pool], dtype=np.float64)
    spread = scores.max() - scores.min()
    relevance = (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)
    dim = next((len(c.vector) for c in pool if c.vector is not None), 0)
    vectors = (
        np.stack(
            [
                np.asarray(c.vector, dtype=np.float32) if c.vector is not None else np.zeros(dim, np.float32)
                for c in pool
            ]
        )
        if dim
        else np.zeros((len(pool), 1), dtype=np.float32)
    )
    closest = np.full(len(pool), -np.inf) if dim else np.zeros(len(pool))
    available = np.ones(len(pool), dtype=bool)
    picked: list[int] = []
    while len(picked) < min(k, len(pool)):
        redundancy = np.where(np.isfinite(closest), closest, 0.0)
        value = np.where(available, trade_off * relevance - (1.0 - trade_off) * redundancy, -np.inf)
        best = int(np.argmax(value))
        picked.append(best)
        available[best] = False
        if dim:
            closest = np.maximum(closest, vectors @ vectors[best])
    return [pool[i] for i in picked]


def _genre_cap(pool: list[Candidate], k: int, cap: int) -> list[Candidate]:
    counts: Counter[str] = Counter()
    chosen: list[Candidate] = []
    skipped: list[Candidate] = []
    for candidate in pool:
        if len(chosen) == k:
            break
        if any(counts[g] >= cap for g in candidate.genres):
            skipped.append(candidate)
            continue
        chosen.append(candidate)
        counts.update(candidate.genres)
    return chosen + skipped[: k - len(chosen)]
