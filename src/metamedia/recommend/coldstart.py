"""Cold items: a learnt map from an item's content vector to its collaborative factors.

The collaborative space is the truncated SVD of the users x items confidence matrix over the
warm items (anyone interacted with them): X ~ U S V^T. A user is ``x_u V`` (their history
folded in), a warm item is its row of V. A ridge regression fitted on the warm items,
``V ~ C W`` (C: unit content vectors), predicts the row of V an item would have from its
content alone, so an item nobody has touched yet is ranked for a user on its first day by
``x_u V . c_i W``: what users like this one liked, transferred through content.
"""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from ..errors import InvalidInput


class ContentMap:
    """Ridge map from content vectors to SVD item factors, fitted on warm items."""

    def __init__(self, factors: int = 64, ridge: float = 1.0, neighbours: int = 0) -> None:
        if factors <= 0 or ridge <= 0 or neighbours < 0:
            raise InvalidInput("ContentMap needs factors > 0, ridge > 0 and neighbours >= 0")
        self.factors = factors
        self.ridge = ridge
        self.neighbours = neighbours  # > 0: average the factors of the most similar warm items instead
        self._warm_vectors: np.ndarray | None = None
        self._warm: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None  # items x k, rows of V (zero for cold items)
        self.weights: np.ndarray | None = None  # content dim x k

    def fit(self, interactions: sp.csr_matrix, item_vectors: np.ndarray) -> Self:
        matrix = sp.csr_matrix(interactions, dtype=np.float64)
        if matrix.shape[1] != item_vectors.shape[0]:
            raise InvalidInput("ContentMap: one content vector per item column is needed")
        warm = np.flatnonzero(np.diff(matrix.tocsc().indptr) > 0)
        k = min(self.factors, len(warm) - 1, matrix.shape[0] - 1)
        if k < 1:
            raise InvalidInput("ContentMap needs at least two users and two warm items")
        _, _, vt = svds(matrix[:, warm], k=k, random_state=0)
        factors = np.zeros((matrix.shape[1], k))
        factors[warm] = vt.T
        content = np.asarray(item_vectors[warm], dtype=np.float64)
        gram = content.T @ content + self.ridge * np.eye(content.shape[1])
        self.weights = np.linalg.solve(gram, content.T @ vt.T)
        self.item_factors = factors
        self._warm_vectors, self._warm = content, warm
        return self

    def predicted_factors(self, item_vectors: np.ndarray) -> np.ndarray:
        """Collaborative factors predicted from content, one row per given vector."""
        if (
            self.weights is None
            or self._warm_vectors is None
            or self.item_factors is None
            or self._warm is None
        ):
            raise InvalidInput("ContentMap: call fit() first")
        vectors = np.asarray(item_vectors, dtype=np.float64)
        if not self.neighbours:
            return vectors @ self.weights
        similarity = vectors @ self._warm_vectors.T
        keep = min(self.neighbours, similarity.shape[1])
        top = np.argpartition(-similarity, keep - 1, axis=1)[:, :keep]
        weights = np.clip(np.take_along_axis(similarity, top, axis=1), 0.0, None)
        warm_factors = self.item_factors[self._warm]
        return np.einsum("ik,ikf->if", weights, warm_factors[top])

    def user_factors(self, history: sp.csr_matrix) -> np.ndarray:
        """Users' histories (rows x items) folded into the factor space."""
        if self.item_factors is None:
            raise InvalidInput("ContentMap: call fit() first")
        return np.asarray(sp.csr_matrix(history, dtype=np.float64) @ self.item_factors)

    def score(self, history: sp.csr_matrix, item_vectors: np.ndarray) -> np.ndarray:
        """(users x given items) scores of items known only by their content vectors."""
        return (self.user_factors(history) @ self.predicted_factors(item_vectors).T).astype(np.float32)
