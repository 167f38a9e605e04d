"""Fusing several recommenders: weighted sum of standardised scores, or reciprocal rank fusion."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Literal, Protocol, Self

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput
from .base import Recommender, ScoringRecommender, as_interactions, top_k

FusionMethod = Literal["weighted", "rrf"]


class ScoreAdjuster(Protocol):
    """Hook run on fused scores before ranking, e.g. the causal-weighted re-ranker.

    Receives the user rows and their (n, n_items) scores; returns adjusted scores of the
    same shape. It must not read anything the recommender was not fitted on.
    """

    def __call__(self, user_rows: np.ndarray, scores: np.ndarray) -> np.ndarray: ...


def standardise(scores: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
    """Per-row z-scores over the candidate columns (default all); other columns become 0.

    Different models score on different scales (co-occurrence counts, dot products,
    cosines); standardising each user's row makes their weights comparable.
    """
    columns = np.ones(scores.shape[1], dtype=bool) if candidates is None else candidates
    block = scores[:, columns].astype(np.float64)
    mean = block.mean(axis=1, keepdims=True)
    spread = block.std(axis=1, keepdims=True)
    spread[spread == 0] = 1.0
    out = np.zeros(scores.shape, dtype=np.float32)
    out[:, columns] = (block - mean) / spread
    return out


def weighted_fusion(
    score_matrices: Sequence[np.ndarray], weights: Sequence[float], candidates: np.ndarray | None = None
) -> np.ndarray:
    """Sum of weight * standardised scores, all matrices (n, n_items)."""
    if len(score_matrices) != len(weights) or not score_matrices:
        raise InvalidInput("weighted fusion needs one weight per score matrix, and at least one")
    fused = np.zeros(score_matrices[0].shape, dtype=np.float32)
    for scores, weight in zip(score_matrices, weights, strict=True):
        if weight:
            fused += np.float32(weight) * standardise(scores, candidates)
    return fused


def reciprocal_rank_fusion(
    score_matrices: Sequence[np.ndarray],
    weights: Sequence[float],
    *,
    depth: int = 100,
    rrf_k: float = 60.0,
    candidates: np.ndarray | None = None,
) -> np.ndarray:
    """RRF (Cormack et al. 2009): each list's top ``depth`` items add weight / (rrf_k + rank).

    Ranks start at 1; items outside every list score 0. Only ranks matter, not score scales.
    ``candidates`` (bool per item) limits the lists to those items.
    """
    if len(score_matrices) != len(weights) or not score_matrices:
        raise InvalidInput("rank fusion needs one weight per score matrix, and at least one")
    if depth <= 0 or rrf_k < 0:
        raise InvalidInput("depth must be positive and rrf_k non-negative")
    fused = np.zeros(score_matrices[0].shape, dtype=np.float32)
    rows = np.arange(len(fused))[:, None]
    contribution = 1.0 / (rrf_k + np.arange(1, depth + 1, dtype=np.float64))
    for scores, weight in zip(score_matrices, weights, strict=True):
        if not weight:
            continue
        if candidates is not None:
            scores = np.where(candidates[None, :], scores, -np.inf)
        indices, _ = top_k(scores, depth)
        valid = indices >= 0
        gains = weight * np.broadcast_to(contribution[: indices.shape[1]], indices.shape)
        np.add.at(fused, (np.broadcast_to(rows, indices.shape)[valid], indices[valid]), gains[valid])
    return fused


class HybridRecommender(ScoringRecommender):
    """Fuses the scores of several recommenders (weighted z-scores or RRF), then an optional adjuster.

    ``fit`` fits every component on the same interactions; keyword arguments such as
    ``timestamps`` go to the components whose ``fit`` accepts them. Weighted fusion
    standardises each user's scores over the items someone interacted with, the items
    every component can rank; other items score 0 before the adjuster.
    """

    def __init__(
        self,
        components: Sequence[tuple[Recommender, float]],
        *,
        method: FusionMethod = "weighted",
        rrf_depth: int = 100,
        rrf_k: float = 60.0,
        adjuster: ScoreAdjuster | None = None,
        name: str = "hybrid",
    ) -> None:
        if not components:
            raise InvalidInput("a hybrid needs at least one component")
        if method not in ("weighted", "rrf"):
            raise InvalidInput(f"unknown fusion method {method!r}; use 'weighted' or 'rrf'")
        self.components = list(components)
        self.method = method
        self.rrf_depth = rrf_depth
        self.rrf_k = rrf_k
        self.adjuster = adjuster
        self.name = name
        self._candidates: np.ndarray | None = None

    def fit(self, interactions: sp.csr_matrix, item_features: np.ndarray | None = None, **extra: Any) -> Self:
        """Fit each component; pass ``extra`` keywords to those whose fit() takes them."""
        matrix = as_interactions(interactions)
        self._interactions = matrix
        self.n_items = matrix.shape[1]
        self._candidates = np.diff(matrix.tocsc().indptr) > 0
        for component, _ in self.components:
            accepted = inspect.signature(component.fit).parameters
            component.fit(matrix, item_features, **{k: v for k, v in extra.items() if k in accepted})
        return self

    def score(self, user_rows: np.ndarray, history: sp.csr_matrix | None = None) -> np.ndarray:
        """Fused scores of all components, adjusted by the hook when one is set."""
        self._fitted()
        rows = np.asarray(user_rows, dtype=np.int64)
        matrices = [component.score(rows, history) for component, _ in self.components]
        weights = [weight for _, weight in self.components]
        if self.method == "rrf":
            fused = reciprocal_rank_fusion(
                matrices, weights, depth=self.rrf_depth, rrf_k=self.rrf_k, candidates=self._candidates
            )
        else:
            fused = weighted_fusion(matrices, weights, self._candidates)
        if self.adjuster is not None:
            adjusted = np.asarray(self.adjuster(rows, fused), dtype=np.float32)
            if adjusted.shape != fused.shape:
                raise InvalidInput(f"score adjuster returned shape {adjusted.shape}, expected {fused.shape}")
            fused = adjusted
        return fused
