"""Choosing metamedia's fused configuration on the validation split (never on the test split)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..errors import InvalidInput
from ..recommend.hybrid import reciprocal_rank_fusion, standardise
from .protocol import Phase, evaluate_scores

WEIGHT_LEVELS = (0.0, 0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class FusionChoice:
    """How component scores are fused, and the validation NDCG@10 that chose it."""

    method: Literal["weighted", "rrf"]
    weights: dict[str, float]
    validation_ndcg: float


def fuse(
    component_scores: Mapping[str, np.ndarray], choice: FusionChoice, candidates: np.ndarray
) -> np.ndarray:
    """Apply a fusion choice to score matrices of the same users."""
    names = [n for n, w in choice.weights.items() if w]
    if not names:
        raise InvalidInput("a fusion choice needs at least one component with a weight")
    if choice.method == "rrf":
        return reciprocal_rank_fusion(
            [component_scores[n] for n in names], [choice.weights[n] for n in names], candidates=candidates
        )
    fused = np.zeros(component_scores[names[0]].shape, dtype=np.float32)
    for name in names:
        fused += np.float32(choice.weights[name]) * standardise(component_scores[name], candidates)
    return fused


def tune_fusion(
    component_scores: Mapping[str, np.ndarray],
    phase: Phase,
    item_vectors: np.ndarray,
    *,
    min_gain: float = 0.01,
    rounds: int = 2,
) -> FusionChoice:
    """Coordinate ascent over fusion weights on validation NDCG@10.

    Starts from the best single component at weight 1; each round tries every other
    component at each of WEIGHT_LEVELS and keeps a change only if it lifts NDCG@10 by at
    least ``min_gain`` (relative), so noise on a few hundred users does not add components.
    Finally reciprocal rank fusion with the same weights is tried; the better one wins.
    """
    if not component_scores:
        raise InvalidInput("fusion tuning needs at least one component")
    standardised = {n: standardise(s, phase.candidates) for n, s in component_scores.items()}

    def ndcg(weights: dict[str, float]) -> float:
        fused = sum((np.float32(w) * standardised[n] for n, w in weights.items() if w), start=np.float32(0.0))
        return evaluate_scores(np.asarray(fused), phase, item_vectors).metrics["ndcg@10"]

    singles = {n: ndcg({n: 1.0}) for n in standardised}
    anchor = max(singles, key=lambda n: (singles[n], n))
    weights = {n: (1.0 if n == anchor else 0.0) for n in standardised}
    best = singles[anchor]
    for _ in range(rounds):
        changed = False
        for name in sorted(standardised):
            if name == anchor:
                continue
            for level in WEIGHT_LEVELS:
                trial = {**weights, name: level}
                if trial == weights:
                    continue
                value = ndcg(trial)
                if value >= best * (1.0 + min_gain):
                    best, weights, changed = value, trial, True
        if not changed:
            break
    choice = FusionChoice("weighted", weights, best)
    if sum(1 for w in weights.values() if w) > 1:
        rrf = FusionChoice("rrf", weights, 0.0)
        value = evaluate_scores(fuse(component_scores, rrf, phase.candidates), phase, item_vectors).metrics[
            "ndcg@10"
        ]
        if value > best:
            choice = FusionChoice("rrf", weights, value)
    return choice
