"""Content-based ranking: a user profile in the item content space, scored by cosine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

import numpy as np
import scipy.sparse as sp

from ..errors import DimensionMismatch, InvalidInput
from .base import ScoringRecommender, as_interactions
from .preference import PreferenceEvent, PreferenceVector


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 length as float32; all-zero rows stay zero."""
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)


class _ContentBase(ScoringRecommender):
    item_vectors: np.ndarray | None = None

    def _set_features(self, interactions: sp.csr_matrix, item_features: np.ndarray | None) -> sp.csr_matrix:
        matrix = as_interactions(interactions)
        if item_features is None:
            raise InvalidInput(f"{self.name}: content-based ranking needs item content vectors")
        if item_features.ndim != 2 or item_features.shape[0] != matrix.shape[1]:
            raise DimensionMismatch(
                f"{self.name}: item_features must have one row per item ({matrix.shape[1]}), "
                f"got shape {item_features.shape}"
            )
        self._interactions = matrix
        self.n_items = matrix.shape[1]
        self.item_vectors = normalise_rows(item_features)
        return matrix


class ContentRecommender(_ContentBase):
    """Static content-based ranking: profile = mean of the consumed items' content vectors.

    ``weighted=True`` weights each item by its interaction value instead of counting it once.
    Every item with a content vector can be ranked, including items nobody interacted with.
    """

    def __init__(self, *, weighted: bool = False, name: str = "content") -> None:
        self.weighted = weighted
        self.name = name

    def fit(self, interactions: sp.csr_matrix, item_features: np.ndarray | None = None) -> Self:
        """Keep the unit-normalised item vectors; profiles are computed at scoring time."""
        self._set_features(interactions, item_features)
        return self

    def score(self, user_rows: np.ndarray, history: sp.csr_matrix | None = None) -> np.ndarray:
        """Cosine between each user's profile and every item vector."""
        if self.item_vectors is None:
            raise InvalidInput(f"{self.name}: call fit() before scoring")
        rows = self._input_rows(user_rows, history)
        if not self.weighted:
            rows = rows.copy()
            rows.data[:] = 1.0
        profiles = normalise_rows(np.asarray(rows @ self.item_vectors))
        return profiles @ self.item_vectors.T


class PreferenceRecommender(_ContentBase):
    """Content ranking from online-learned PreferenceVectors, replaying each user's signals in time order.

    Interaction values are signal strengths in [-1, 1] (see signals.py): low ratings and
    skips push a profile away from an item. Score = cosine(profile, item) plus
    ``genre_weight`` times the mean learned affinity of the item's genres.
    """

    def __init__(
        self,
        *,
        min_rate: float = 0.02,
        genre_weight: float = 0.0,
        item_genres: Sequence[Sequence[str]] | None = None,
        name: str = "preference",
    ) -> None:
        if genre_weight and item_genres is None:
            raise InvalidInput("genre_weight needs item_genres")
        self.min_rate = min_rate
        self.genre_weight = genre_weight
        self.item_genres = [tuple(g) for g in item_genres] if item_genres is not None else None
        self.name = name
        self.profiles: list[PreferenceVector] = []
        self._genre_names: list[str] = []
        self._genre_means: sp.csr_matrix | None = None

    def fit(
        self,
        interactions: sp.csr_matrix,
        item_features: np.ndarray | None = None,
        *,
        timestamps: sp.csr_matrix | None = None,
    ) -> Self:
        """Replay every user's interactions (ordered by ``timestamps``, else by item index)."""
        matrix = self._set_features(interactions, item_features)
        if self.item_genres is not None and len(self.item_genres) != self.n_items:
            raise DimensionMismatch(f"{self.name}: item_genres must have one entry per item")
        times = None
        if timestamps is not None:
            times = sp.csr_matrix(timestamps, dtype=np.float64)
            times.sort_indices()
            if times.shape != matrix.shape or times.nnz != matrix.nnz:
                raise InvalidInput(f"{self.name}: timestamps must have the interactions' shape and sparsity")
        vectors = self.item_vectors
        if vectors is None:
            raise InvalidInput(f"{self.name}: item vectors missing")
        no_genres: tuple[str, ...] = ()
        self.profiles = []
        for user in range(matrix.shape[0]):
            start, stop = matrix.indptr[user], matrix.indptr[user + 1]
            items, strengths = matrix.indices[start:stop], matrix.data[start:stop]
            when = times.data[start:stop] if times is not None else np.zeros(len(items))
            profile = PreferenceVector(vectors.shape[1], min_rate=self.min_rate)
            for position in np.lexsort((items, when)):
                item, strength = int(items[position]), float(np.clip(strengths[position], -1.0, 1.0))
                genres = self.item_genres[item] if self.item_genres is not None else no_genres
                event = PreferenceEvent(item, strength, genres, timestamp=float(when[position]))
                profile.update(vectors[item], strength, event)
            self.profiles.append(profile)
        self._build_genre_means()
        return self

    def score(self, user_rows: np.ndarray, history: sp.csr_matrix | None = None) -> np.ndarray:
        """Cosine to each learned profile (plus genre affinity); a new history needs a refit."""
        if self.item_vectors is None:
            raise InvalidInput(f"{self.name}: call fit() before scoring")
        if history is not None:
            raise InvalidInput(
                f"{self.name}: profiles are learned online; fit() with the new signals instead"
            )
        rows = np.asarray(user_rows, dtype=np.int64)
        directions = np.stack([self.profiles[int(row)].direction() for row in rows])
        scores = directions @ self.item_vectors.T
        if self.genre_weight and self._genre_means is not None:
            affinities = np.array(
                [
                    [self.profiles[int(row)].genre_affinity.get(g, 0.0) for g in self._genre_names]
                    for row in rows
                ],
                dtype=np.float32,
            )
            scores += self.genre_weight * np.asarray(affinities @ self._genre_means.T, dtype=np.float32)
        return scores

    def _build_genre_means(self) -> None:
        """Item x genre matrix whose rows average over the item's genres (all zero when it has none)."""
        self._genre_names = sorted({g for genres in self.item_genres or () for g in genres})
        if self.item_genres is None or not self._genre_names:
            self._genre_means = None
            return
        column = {g: i for i, g in enumerate(self._genre_names)}
        rows = [i for i, genres in enumerate(self.item_genres) for _ in genres]
        cols = [column[g] for genres in self.item_genres for g in genres]
        vals = [1.0 / len(genres) for genres in self.item_genres for _ in genres]
        self._genre_means = sp.csr_matrix(
            (vals, (rows, cols)), shape=(len(self.item_genres), len(self._genre_names)), dtype=np.float32
        )
