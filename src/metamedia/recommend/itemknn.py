"""Item-based k-nearest-neighbours: cosine similarity between item columns, top neighbours kept."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput
from .base import ScoringRecommender, as_interactions

# Items per block when computing similarities, to bound memory at n_items x BLOCK floats.
BLOCK = 2048


class ItemKNNRecommender(ScoringRecommender):
    """Score(u, i) = sum over the user's items j of sim(j, i), keeping each item's top neighbours.

    Similarity is cosine between item columns, damped by ``shrink`` (sim * n / (n + shrink),
    n = co-occurrence count) so pairs seen together by few users count less.
    """

    def __init__(self, neighbours: int = 100, shrink: float = 0.0, *, name: str = "item-knn") -> None:
        if neighbours <= 0:
            raise InvalidInput(f"neighbours must be positive, got {neighbours}")
        if shrink < 0:
            raise InvalidInput(f"shrink must be non-negative, got {shrink}")
        self.neighbours = neighbours
        self.shrink = shrink
        self.name = name
        self.similarity: sp.csr_matrix | None = None

    def fit(self, interactions: sp.csr_matrix, item_features: np.ndarray | None = None) -> Self:
        """Build the sparse item x item similarity matrix (each column keeps its top neighbours)."""
        matrix = as_interactions(interactions)
        self._interactions = matrix
        self.n_items = matrix.shape[1]
        columns = matrix.tocsc()
        norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        binary = columns.copy()
        binary.data[:] = 1.0
        keep = min(self.neighbours, max(self.n_items - 1, 1))
        rows_out: list[np.ndarray] = []
        cols_out: list[np.ndarray] = []
        vals_out: list[np.ndarray] = []
        rows_csr, binary_csr = columns.tocsr(), binary.tocsr()
        for start in range(0, self.n_items, BLOCK):
            stop = min(start + BLOCK, self.n_items)
            # Row r of the block holds the similarities of item start + r to every item.
            block = (columns[:, start:stop].T @ rows_csr).toarray()
            block /= norms[start:stop, None] * norms[None, :]
            if self.shrink > 0:
                counts = (binary[:, start:stop].T @ binary_csr).toarray()
                block *= counts / (counts + self.shrink)
            block[np.arange(stop - start), np.arange(start, stop)] = 0.0
            best = np.argpartition(-block, keep - 1, axis=1)[:, :keep]
            values = np.take_along_axis(block, best, axis=1)
            nonzero = values > 0
            rows_out.append(best[nonzero])
            cols_out.append(np.broadcast_to(np.arange(start, stop)[:, None], best.shape)[nonzero])
            vals_out.append(values[nonzero])
        self.similarity = sp.csr_matrix(
            (np.concatenate(vals_out), (np.concatenate(rows_out), np.concatenate(cols_out))),
            shape=(self.n_items, self.n_items),
            dtype=np.float32,
        )
        return self

    def score(self, user_rows: np.ndarray, history: sp.csr_matrix | None = None) -> np.ndarray:
        """The users' rows times the similarity matrix, as dense float32."""
        if self.similarity is None:
            raise InvalidInput(f"{self.name}: call fit() before scoring")
        rows = self._input_rows(user_rows, history)
        return np.asarray((rows @ self.similarity).toarray(), dtype=np.float32)
