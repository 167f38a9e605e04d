"""Implicit-feedback matrix factorisation with alternating least squares (the `implicit` library)."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from ..errors import BackendUnavailable, InvalidInput
from .base import ScoringRecommender, as_interactions


def _single_threaded_blas() -> Any:
    """A context manager limiting BLAS to one thread (threadpoolctl comes with implicit)."""
    try:
        # deferred: threadpoolctl comes with the optional `implicit` ALS
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        raise BackendUnavailable("ALS needs the implicit library: install metamedia[recommend]") from exc
    return threadpool_limits(1, "blas")


def _als_class() -> Any:
    try:
        # deferred: `implicit` (ALS) is an optional dependency
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError as exc:
        raise BackendUnavailable("ALS needs the implicit library: install metamedia[recommend]") from exc
    return AlternatingLeastSquares


class ALSRecommender(ScoringRecommender):
    """Hu/Koren/Volinsky implicit ALS; score(u, i) = user_factors[u] . item_factors[i].

    ``alpha`` scales interaction weights into confidences. BLAS is limited to one thread
    while fitting, as implicit recommends (its own loops are already parallel).
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 15,
        *,
        seed: int = 0,
        num_threads: int = 0,
        name: str = "als",
    ) -> None:
        if factors <= 0 or iterations <= 0:
            raise InvalidInput("factors and iterations must be positive")
        if regularization < 0 or alpha <= 0:
            raise InvalidInput("regularization must be >= 0 and alpha > 0")
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.seed = seed
        self.num_threads = num_threads
        self.name = name
        self._model: Any = None
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def fit(self, interactions: sp.csr_matrix, item_features: np.ndarray | None = None) -> Self:
        """Factorise the interaction matrix (fixed seed: same factors on every run)."""
        matrix = as_interactions(interactions)
        self._interactions = matrix
        self.n_items = matrix.shape[1]
        with _single_threaded_blas():
            model = _als_class()(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                calculate_training_loss=False,
                num_threads=self.num_threads,
                random_state=self.seed,
            )
            model.fit(matrix, show_progress=False)
        self._model = model
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def score(self, user_rows: np.ndarray, history: sp.csr_matrix | None = None) -> np.ndarray:
        """Dot products of user and item factors; a given ``history`` is folded in by one ALS step."""
        if self.user_factors is None or self.item_factors is None:
            raise InvalidInput(f"{self.name}: call fit() before scoring")
        rows = np.asarray(user_rows, dtype=np.int64)
        if history is None:
            users = self.user_factors[rows]
        else:
            checked = self._input_rows(rows, history)
            with _single_threaded_blas():
                users = np.asarray(
                    self._model.recalculate_user(np.arange(len(rows)), checked), dtype=np.float32
                )
        return np.asarray(users @ self.item_factors.T, dtype=np.float32)
