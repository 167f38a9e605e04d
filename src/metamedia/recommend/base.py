"""The interface every recommender implements, and the top-k selection they share.

Conventions: users and items are row / column indices of a users x items
``scipy.sparse.csr_matrix`` of float32 interaction weights. A recommender scores every
column for the requested rows; ``recommend`` turns scores into the k best unseen items.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol, Self, runtime_checkable

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput


@runtime_checkable
class Recommender(Protocol):
    """A model that learns from a users x items interaction matrix and ranks items per user."""

    name: str

    def fit(self, interactions: sp.csr_matrix, item_features: np.ndarray | None = None) -> Self:
        """Learn from ``interactions`` (users x items, float32) and optional per-item feature rows."""
        ...

    def score(self, user_rows: np.ndarray, history: sp.csr_matrix | None = None) -> np.ndarray:
        """Dense (len(user_rows), n_items) float32 scores; higher is better.

        ``history`` (len(user_rows) x n_items) replaces the fitted rows as the users' input,
        for users unseen at fit time or re-weighted histories; models that cannot fold in
        a new history raise InvalidInput.
        """
        ...

    def recommend(
        self, user_rows: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best items per user as (indices (n, k) int64, scores (n, k) float32)."""
        ...


class ScoringRecommender(ABC):
    """Base class: subclasses implement ``fit`` and ``score``; ``recommend`` is shared."""

    name: str = "recommender"
    n_items: int = 0
    _interactions: sp.csr_matrix | None = None

    @abstractmethod
    def fit(self, interactions: sp.csr_matrix, item_features: np.ndarray | None = None) -> Self:
        """Learn from the interaction matrix."""

    @abstractmethod
    def score(self, user_rows: np.ndarray, history: sp.csr_matrix | None = None) -> np.ndarray:
        """Dense scores for every item, one row per requested user."""

    def recommend(
        self, user_rows: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k best items per user, skipping the non-zero cells of ``exclude`` (users x items)."""
        rows = np.asarray(user_rows, dtype=np.int64)
        scores = self.score(rows)
        if exclude is not None:
            mask_excluded(scores, exclude[rows])
        return top_k(scores, k)

    def _fitted(self) -> sp.csr_matrix:
        if self._interactions is None:
            raise InvalidInput(f"{self.name}: call fit() before scoring")
        return self._interactions

    def _input_rows(self, user_rows: np.ndarray, history: sp.csr_matrix | None) -> sp.csr_matrix:
        """The users' interaction rows: the explicit history when given, else the fitted rows."""
        if history is None:
            return self._fitted()[np.asarray(user_rows, dtype=np.int64)]
        checked = as_interactions(history)
        if checked.shape != (len(user_rows), self.n_items):
            raise InvalidInput(
                f"{self.name}: history has shape {checked.shape}, expected ({len(user_rows)}, {self.n_items})"
            )
        return checked


def as_interactions(matrix: sp.spmatrix | sp.sparray | np.ndarray) -> sp.csr_matrix:
    """The input as a float32 CSR matrix with sorted indices; rejects non-2-D input."""
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    if csr.ndim != 2:
        raise InvalidInput(f"interactions must be 2-D users x items, got {csr.ndim}-D")
    csr.sort_indices()
    return csr


def mask_excluded(scores: np.ndarray, exclude_rows: sp.csr_matrix) -> None:
    """Set to -inf, in place, every score whose cell is stored in ``exclude_rows``."""
    coo = sp.coo_matrix(exclude_rows)
    scores[coo.row, coo.col] = -np.inf


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the k largest finite scores per row, best first.

    Rows with fewer than k finite scores are padded with index -1 and score -inf.
    """
    if k <= 0:
        raise InvalidInput(f"k must be positive, got {k}")
    n_rows, n_cols = scores.shape
    take = min(k, n_cols)
    part = (
        np.argpartition(-scores, take - 1, axis=1)[:, :take]
        if take < n_cols
        else np.tile(np.arange(n_cols), (n_rows, 1))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    # Stable sort on (-score, index) so ties break the same way on every run.
    order = np.lexsort((part, -part_scores), axis=1)
    indices = np.take_along_axis(part, order, axis=1).astype(np.int64)
    values = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    if take < k:
        indices = np.pad(indices, ((0, 0), (0, k - take)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, k - take)), constant_values=-np.inf)
    unusable = ~np.isfinite(values)
    indices[unusable] = -1
    return indices, values
