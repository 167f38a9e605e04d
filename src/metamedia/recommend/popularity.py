"""Popularity and trending: how many users interacted with an item, decayed by age."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput
from .base import ScoringRecommender, as_interactions

SECONDS_PER_DAY = 86_400.0


class PopularityRecommender(ScoringRecommender):
    """Ranks items by interaction count, each interaction weighted 0.5 ** (age / half-life).

    ``half_life_days=None`` counts every interaction fully (plain popularity). Age is
    measured from a reference time: ``now`` when given, else the newest interaction seen
    at fit time. With ``per_user_time=True`` each user gets their own reference time, the
    time of their latest interaction, and only interactions at or before it count: "what
    was trending when this user was last active", which never looks into that user's future.
    """

    def __init__(
        self,
        half_life_days: float | None = None,
        *,
        per_user_time: bool = False,
        now: float | None = None,
        name: str | None = None,
    ) -> None:
        if half_life_days is not None and half_life_days <= 0:
            raise InvalidInput(f"half_life_days must be positive, got {half_life_days}")
        self.half_life_days = half_life_days
        self.per_user_time = per_user_time
        self.now = now
        self.name = name or ("trending" if half_life_days else "popularity")
        self._timestamps: sp.csr_matrix | None = None
        self._global_scores: np.ndarray | None = None

    def fit(
        self,
        interactions: sp.csr_matrix,
        item_features: np.ndarray | None = None,
        *,
        timestamps: sp.csr_matrix | None = None,
    ) -> Self:
        """Count interactions per item; ``timestamps`` (unix seconds, same sparsity) enables decay."""
        matrix = as_interactions(interactions)
        self._interactions = matrix
        self.n_items = matrix.shape[1]
        if (self.half_life_days is not None or self.per_user_time) and timestamps is None:
            raise InvalidInput(f"{self.name}: recency decay needs the interactions' timestamps")
        if timestamps is not None:
            times = sp.csr_matrix(timestamps, dtype=np.float64)
            times.sort_indices()
            if times.shape != matrix.shape or times.nnz != matrix.nnz:
                raise InvalidInput(f"{self.name}: timestamps must have the interactions' shape and sparsity")
            self._timestamps = times
        reference = self.now if self.now is not None else self._newest()
        self._global_scores = self._decayed_counts(reference)
        return self

    def score(self, user_rows: np.ndarray, history: sp.csr_matrix | None = None) -> np.ndarray:
        """The same popularity row for every user, or per-user trending when ``per_user_time``."""
        rows = np.asarray(user_rows, dtype=np.int64)
        if self._global_scores is None:
            raise InvalidInput(f"{self.name}: call fit() before scoring")
        if not self.per_user_time:
            return np.tile(self._global_scores, (len(rows), 1))
        if self._timestamps is None:
            raise InvalidInput(f"{self.name}: per-user trending needs timestamps at fit time")
        out = np.empty((len(rows), self.n_items), dtype=np.float32)
        for position, row in enumerate(rows):
            user_times = self._timestamps[int(row)].data
            reference = float(user_times.max()) if len(user_times) else self._newest()
            out[position] = self._decayed_counts(reference)
        return out

    def _newest(self) -> float:
        if self._timestamps is None or self._timestamps.nnz == 0:
            return 0.0
        return float(self._timestamps.data.max())

    def _decayed_counts(self, reference: float) -> np.ndarray:
        matrix = self._fitted()
        items = matrix.indices
        if self._timestamps is None or (self.half_life_days is None and not self.per_user_time):
            return np.bincount(items, minlength=self.n_items).astype(np.float32)
        ages_days = (reference - self._timestamps.data) / SECONDS_PER_DAY
        if self.half_life_days is None:
            weights = np.ones_like(ages_days)
        else:
            weights = np.power(0.5, np.clip(ages_days, 0.0, None) / self.half_life_days)
        if self.per_user_time:
            weights = np.where(ages_days >= 0.0, weights, 0.0)
        return np.bincount(items, weights=weights, minlength=self.n_items).astype(np.float32)
