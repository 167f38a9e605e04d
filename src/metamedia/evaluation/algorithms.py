"""The algorithms an evaluation run compares, each with its validation grid.

Baselines learn from which items a user had (binary); metamedia's components also learn
from how strongly (the signal strength of each rating, see recommend.signals) and when.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..recommend.als import ALSRecommender
from ..recommend.content import ContentRecommender, PreferenceRecommender
from ..recommend.ease import EASERecommender
from ..recommend.graph import GraphFilterRecommender
from ..recommend.itemknn import ItemKNNRecommender
from ..recommend.popularity import PopularityRecommender
from .protocol import Phase

Role = Literal["baseline", "metamedia"]


@dataclass(frozen=True)
class Context:
    """What every scorer may use besides the phase's interactions."""

    item_vectors: np.ndarray  # unit-length content rows aligned with the item index
    item_genres: Sequence[tuple[str, ...]]
    seed: int


Scorer = Callable[[Phase, Context, dict[str, Any]], np.ndarray]


@dataclass(frozen=True)
class AlgorithmSpec:
    """An algorithm, its role in the comparison, and the settings tried on validation."""

    name: str
    role: Role
    description: str
    scorer: Scorer
    grid: tuple[dict[str, Any], ...] = field(default_factory=lambda: ({},))


def _popularity(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    return PopularityRecommender().fit(phase.binary).score(phase.users)


def _item_knn(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    return ItemKNNRecommender(**params).fit(phase.binary).score(phase.users)


def _ease(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    return EASERecommender(**params).fit(phase.binary).score(phase.users)


def _als(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    return ALSRecommender(**params, seed=ctx.seed).fit(phase.binary).score(phase.users)


def _content(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    return ContentRecommender().fit(phase.binary, ctx.item_vectors).score(phase.users)


def _ease_signal(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    model = EASERecommender(**params).fit(phase.confidence)
    return model.score(phase.users, history=phase.strength[phase.users])


def _item_knn_signal(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    model = ItemKNNRecommender(**params).fit(phase.confidence)
    return model.score(phase.users, history=phase.strength[phase.users])


def _graph_signal(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    model = GraphFilterRecommender(**params, seed=ctx.seed).fit(phase.confidence)
    return model.score(phase.users, history=phase.strength[phase.users])


def _trending(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    model = PopularityRecommender(params["half_life_days"], per_user_time=True)
    return model.fit(phase.binary, timestamps=phase.timestamps).score(phase.users)


def _preference(phase: Phase, ctx: Context, params: dict[str, Any]) -> np.ndarray:
    model = PreferenceRecommender(**params, item_genres=ctx.item_genres)
    return model.fit(phase.strength, ctx.item_vectors, timestamps=phase.timestamps).score(phase.users)


def default_algorithms(quick: bool = False) -> list[AlgorithmSpec]:
    """Baselines and metamedia's components; ``quick`` shrinks every grid (for tests)."""

    def grid(full: list[dict[str, Any]], small: list[dict[str, Any]]) -> tuple[dict[str, Any], ...]:
        return tuple(small if quick else full)

    als_full = [
        {"factors": f, "regularization": r, "alpha": a}
        for f in (32, 64, 128)
        for r in (0.01, 0.1)
        for a in (1.0, 10.0)
    ]
    ease_full = [{"l2": 50.0}, {"l2": 100.0}, {"l2": 200.0}, {"l2": 500.0}, {"l2": 1000.0}]
    return [
        AlgorithmSpec("popularity", "baseline", "most-interacted items", _popularity),
        AlgorithmSpec(
            "item-knn",
            "baseline",
            "item-item cosine kNN on binary interactions",
            _item_knn,
            grid([{"neighbours": 50}, {"neighbours": 200}], [{"neighbours": 50}]),
        ),
        AlgorithmSpec(
            "ease",
            "baseline",
            "EASE closed form on binary interactions",
            _ease,
            grid(ease_full, [{"l2": 100.0}, {"l2": 300.0}]),
        ),
        AlgorithmSpec(
            "als",
            "baseline",
            "implicit ALS on binary interactions",
            _als,
            grid(
                als_full,
                [
                    {"factors": 16, "regularization": 0.1, "alpha": 1.0},
                    {"factors": 32, "regularization": 0.1, "alpha": 10.0},
                ],
            ),
        ),
        AlgorithmSpec(
            "content-static",
            "baseline",
            "content vectors, profile = one-shot mean of training items",
            _content,
        ),
        AlgorithmSpec(
            "ease-signal",
            "metamedia",
            "EASE fit on signal confidence, scored from signed signal strengths",
            _ease_signal,
            grid(ease_full, [{"l2": 100.0}]),
        ),
        AlgorithmSpec(
            "item-knn-signal",
            "metamedia",
            "item-item cosine kNN on signal confidence, signed-strength input",
            _item_knn_signal,
            grid([{"neighbours": 200}], [{"neighbours": 50}]),
        ),
        AlgorithmSpec(
            "gf-cf-signal",
            "metamedia",
            "GF-CF graph filter on signal confidence, signed-strength input",
            _graph_signal,
            grid(
                [{"alpha": 0.0}, {"alpha": 0.3, "factors": 128}],
                [{"alpha": 0.0}, {"alpha": 0.3, "factors": 16}],
            ),
        ),
        AlgorithmSpec(
            "trending",
            "metamedia",
            "recency-decayed popularity as of each user's last activity",
            _trending,
            grid(
                [{"half_life_days": 30.0}, {"half_life_days": 180.0}, {"half_life_days": 730.0}],
                [{"half_life_days": 180.0}],
            ),
        ),
        AlgorithmSpec(
            "preference-online",
            "metamedia",
            "content vectors, PreferenceVector learned online from signed signals in time order",
            _preference,
            grid(
                [{"min_rate": m, "genre_weight": g} for m in (0.02, 0.1) for g in (0.0, 0.5)],
                [{"min_rate": 0.05, "genre_weight": 0.5}],
            ),
        ),
    ]
