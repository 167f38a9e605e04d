"""Training-free graph filtering over the user-item graph (GF-CF, Shen et al. 2021)."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from ..errors import InvalidInput
from .base import ScoringRecommender, as_interactions


class GraphFilterRecommender(ScoringRecommender):
    """Score = r_u (R~^T R~) + alpha * r_u D_I^-1/2 V V^T D_I^1/2.

    R~ = D_U^-1/2 R D_I^-1/2 is the degree-normalised interaction matrix. The first term
    is a linear low-pass filter (one step of normalised item-item propagation, the
    LightGCN-style smoothing); the second an ideal low-pass filter keeping the ``factors``
    leading right singular vectors V of R~. ``alpha=0`` skips the SVD. Nothing is trained:
    fitting is a normalisation and one truncated SVD.
    """

    def __init__(self, alpha: float = 0.3, factors: int = 256, *, seed: int = 0, name: str = "gf-cf") -> None:
        if alpha < 0:
            raise InvalidInput(f"alpha must be non-negative, got {alpha}")
        if factors <= 0:
            raise InvalidInput(f"factors must be positive, got {factors}")
        self.alpha = alpha
        self.factors = factors
        self.seed = seed
        self.name = name
        self._normalised: sp.csr_matrix | None = None
        self._item_scale: np.ndarray | None = None
        self._singular_vectors: np.ndarray | None = None

    def fit(self, interactions: sp.csr_matrix, item_features: np.ndarray | None = None) -> Self:
        """Normalise the graph and, when alpha > 0, take its leading singular vectors."""
        matrix = as_interactions(interactions)
        self._interactions = matrix
        self.n_items = matrix.shape[1]
        user_degree = np.asarray(matrix.sum(axis=1)).ravel()
        item_degree = np.asarray(matrix.sum(axis=0)).ravel()
        user_scale = _inverse_sqrt(user_degree)
        self._item_scale = _inverse_sqrt(item_degree)
        self._normalised = sp.csr_matrix(
            sp.diags(user_scale) @ matrix @ sp.diags(self._item_scale), dtype=np.float32
        )
        self._singular_vectors = None
        if self.alpha > 0:
            rank = min(self.factors, min(matrix.shape) - 1)
            if rank < 1:
                raise InvalidInput(f"{self.name}: the interaction matrix is too small for an SVD")
            _, _, vt = svds(self._normalised.astype(np.float64), k=rank, random_state=self.seed)
            self._singular_vectors = np.ascontiguousarray(vt.T, dtype=np.float32)
        return self

    def score(self, user_rows: np.ndarray, history: sp.csr_matrix | None = None) -> np.ndarray:
        """Propagated scores for every item, as dense float32."""
        if self._normalised is None or self._item_scale is None:
            raise InvalidInput(f"{self.name}: call fit() before scoring")
        rows = self._input_rows(user_rows, history)
        linear = (rows @ self._normalised.T) @ self._normalised
        scores = np.asarray(linear.toarray() if sp.issparse(linear) else linear, dtype=np.float32)
        if self._singular_vectors is not None:
            scaled = rows @ sp.diags(self._item_scale)
            projected = np.asarray(scaled @ self._singular_vectors)
            with np.errstate(divide="ignore"):
                unscale = np.where(self._item_scale > 0, 1.0 / self._item_scale, 0.0)
            scores += (
                self.alpha * (projected @ self._singular_vectors.T) * unscale[None, :].astype(np.float32)
            )
        return scores


def _inverse_sqrt(degree: np.ndarray) -> np.ndarray:
    """1/sqrt(degree), with 0 where the degree is 0 (isolated nodes propagate nothing)."""
    out = np.zeros_like(degree, dtype=np.float64)
    positive = degree > 0
    out[positive] = 1.0 / np.sqrt(degree[positive])
    return out
