"""What the default recommendation path serves, defined once for the service and the evaluation.

``SERVING`` is the configuration `metamedia eval` chose on validation data (EASE fitted on signal
confidence and scored from signed signal strengths, fused with item-kNN on the same input; weights
from evaluation.tuning.tune_fusion on MovieLens latest-small, two seeds). The server fits
``FusedRecommender(SERVING)`` in models.fit_models and serves it as the ``fused`` algorithm, the
default of ``auto``; the evaluation scores the very same class with the very same object, and its
served-path replay (evaluation.served) asks ``Engine.recommend`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput
from .base import ScoringRecommender, as_interactions
from .coldstart import ContentMap
from .ease import EASERecommender
from .hybrid import standardise
from .itemknn import ItemKNNRecommender
from .popularity import SECONDS_PER_DAY


@dataclass(frozen=True)
class ServingConfig:
    """The served model: component hyper-parameters and fusion weights (standardised scores).

    ``ease_max_items`` caps the items EASE models (the most-interacted ones) so a fit stays
    bounded on large catalogs; the others still get item-kNN scores.
    """

    ease_l2: float = 50.0
    knn_neighbours: int = 200
    weights: dict[str, float] = field(default_factory=lambda: {"ease-signal": 1.0, "item-knn-signal": 0.1})
    ease_max_items: int = 12000
    # Popularity of liked items (standardised) added with this weight when a user has n rated items,
    # n = 1..5, together with the recent-likes prior below: both weights per n are the pair of
    # (0, .5, 1, 1.5, 2, 3, 4) x (0, .5, 1, 2, 3, 4, 6, 8) with the best mean NDCG@10 over the cold-user
    # validation users of seeds 0 and 1 (`metamedia eval`, evaluation.coldstart).
    popularity_blend: dict[int, float] = field(
        default_factory=lambda: {1: 2.0, 2: 1.5, 3: 1.5, 4: 2.0, 5: 1.0}
    )
    # Recent likes (standardised), each like weighted 0.5 ** (age / half-life) from a reference time, added
    # with this weight when a user has n rated items: what was liked lately, the served form of "popular
    # when this user arrived". Served: the reference is the newest interaction at fit time (now, as
    # trending); evaluated: the time of the cold user's latest rating, counting only likes before it.
    recent_popularity_blend: dict[int, float] = field(
        default_factory=lambda: {1: 4.0, 2: 6.0, 3: 6.0, 4: 3.0, 5: 0.5}
    )
    recent_half_life_days: float = 365.0
    # A quiet spell falls back to popularity: the decayed likes are topped up to this many with pseudo-likes
    # spread as all likes up to the reference time, so a handful of fresh likes on a stale catalog cannot
    # take over every newcomer's list (in the evaluation a year holds thousands of likes: no effect there).
    recent_min_likes: float = 200.0
    # The served list's one diversity pass (rerank.rerank; memory's slate diversity rule skips a
    # list MMR spread, recommend.memory_rerank). On the served-path validation replay
    # (bench/served_tuning.py --memory-ablation, 120 users) 0.8 cost 1.3% / 0.6% of `fused`
    # NDCG@10 on seeds 0 / 1 against no diversity (0.9 and 1.0: 0%); kept for its variety at ~1%.
    mmr_lambda: float = 0.8
    # Items nobody interacted with yet are scored through the content -> CF map (recommend.coldstart,
    # settings chosen on the cold-item validation split on both seeds), as a z-score over the warm
    # items' mapped scores times ``cold_item_weight``; only the best ``cold_item_slots`` new items of
    # a user keep that score, the others rank below every warm item (in their own order). On the
    # served-path validation replay (bench/served_tuning.py: 120 validation users, seed 0; `fused`
    # NDCG@10 at the split point vs .1456 offline) weight 0.5 without a cap gave .1318 (3,500 demo
    # titles outside the ratings data competing for every list), 0.25 .1370, 0.1 .1377, 0.05 .1377;
    # weight 0.5 with 1 slot .1357, with 2 slots .1360; 1.0 with 1 slot .1298. Below 0.5 a new item
    # no longer reaches the list of someone who liked its nearest titles (tests/test_recommend_service:
    # new items on their first day), so 0.5 with 1 slot: the validation best that keeps day one.
    # Factors and ridge: the best mean validation NDCG@10 over seeds 0 and 1 with the catalog vectors
    # (128 / 0.1; a neighbour average of warm items' factors, ``cold_item_neighbours`` > 0, was 15-20% worse).
    cold_item_factors: int = 128
    cold_item_ridge: float = 0.1
    cold_item_neighbours: int = 0
    cold_item_weight: float = 0.5
    cold_item_slots: int = 1
    chosen_on: str = (
        "validation NDCG@10 of `metamedia eval` (temporal split, MovieLens latest-small, seeds 0 and 1): "
        "ease-signal l2 50 from {50..1000}, item-knn-signal 200 neighbours, fusion weights by coordinate ascent; "
        "popularity and recent-likes blends per history length: best mean over the cold-user validation users "
        "of seeds 0 and 1"
    )

    def __post_init__(self) -> None:
        if self.ease_l2 <= 0 or self.knn_neighbours <= 0 or self.ease_max_items <= 0:
            raise InvalidInput("ease_l2, knn_neighbours and ease_max_items must be positive")
        if self.cold_item_slots < 0:
            raise InvalidInput("cold_item_slots must be >= 0")
        if self.recent_half_life_days <= 0 or self.recent_min_likes < 0:
            raise InvalidInput("recent_half_life_days must be positive and recent_min_likes not negative")
        unknown = set(self.weights) - {"ease-signal", "item-knn-signal"}
        if unknown or not any(self.weights.values()):
            raise InvalidInput(f"fusion weights need ease-signal and/or item-knn-signal, got {self.weights}")


SERVING = ServingConfig()
# Confidence (1 + strength) / 2 from which an interaction counts as liked: strength 0.5 (a like, a
# list add, a rewatch, 4 of 5 stars; recommend.signals).
LIKED_CONFIDENCE = 0.75


class FusedRecommender(ScoringRecommender):
    """Weighted sum of standardised EASE and item-kNN scores over the items anyone interacted with.

    Fit on confidence ((1 + strength) / 2); score from signed strengths (a disliked item pushes
    its neighbours down). Items nobody interacted with score -inf: this model cannot rank them.
    """

    def __init__(self, config: ServingConfig = SERVING, *, name: str = "fused") -> None:
        self.config = config
        self.name = name
        self.ease: EASERecommender | None = None
        self.knn: ItemKNNRecommender | None = None
        self.candidates = np.zeros(0, dtype=bool)
        self.popularity = np.zeros((1, 0), dtype=np.float32)
        self.content_map: ContentMap | None = None
        self.item_vectors: np.ndarray | None = None

    def fit(
        self,
        interactions: sp.csr_matrix,
        item_features: np.ndarray | None = None,
        *,
        timestamps: sp.csr_matrix | None = None,
    ) -> Self:
        """``timestamps`` (unix seconds, the interactions' cells) enable the recent-likes prior."""
        matrix = as_interactions(interactions)
        self._interactions = matrix
        self.n_items = matrix.shape[1]
        item_users = np.diff(matrix.tocsc().indptr)
        self.candidates = item_users > 0
        # the prior of short histories counts who liked an item, not who touched it (a 4-star rating
        # or a like, not a 2-star one): on the cold-user validation users it beat the plain count
        liked = sp.csc_matrix(matrix >= np.float32(LIKED_CONFIDENCE))
        liked_users = np.diff(liked.indptr).astype(np.float32)
        self.popularity = standardise(liked_users[None, :], self.candidates)
        self._liked_items = self._liked_times = np.zeros(0)
        self.recent = np.zeros((1, 0), dtype=np.float32)
        if timestamps is not None and self.config.recent_popularity_blend:
            when = sp.csr_matrix(timestamps, dtype=np.float64)
            if when.shape != matrix.shape:
                raise InvalidInput("fused: timestamps must have the interactions' shape")
            cells = sp.coo_matrix(when.multiply(liked.tocsr()))
            self._liked_items, self._liked_times = cells.col, cells.data
            newest = float(cells.data.max()) if cells.nnz else 0.0
            self.recent = self.recent_popularity(np.array([newest]))
        weights = self.config.weights
        self.ease = (
            EASERecommender(self.config.ease_l2).fit(
                most_interacted(matrix, item_users, self.config.ease_max_items)
            )
            if weights.get("ease-signal")
            else None
        )
        self.knn = (
            ItemKNNRecommender(self.config.knn_neighbours).fit(matrix)
            if weights.get("item-knn-signal")
            else None
        )
        self.content_map = self.item_vectors = None
        self.mapped_factors: np.ndarray | None = None
        usable = item_features is not None and self.config.cold_item_weight > 0
        if usable and (~self.candidates).any() and self.candidates.sum() > 2:
            vectors = np.asarray(item_features, dtype=np.float32)
            try:
                self.content_map = ContentMap(
                    self.config.cold_item_factors,
                    self.config.cold_item_ridge,
                    self.config.cold_item_neighbours,
                ).fit(matrix, vectors)
                self.item_vectors = vectors
                # content-predicted factors of every item, once per fit (a request only folds the user in)
                self.mapped_factors = self.content_map.predicted_factors(vectors).T.astype(np.float32)
            except (InvalidInput, ValueError, np.linalg.LinAlgError):
                self.content_map = None  # too little data for a map: new items wait for their first signal
        return self

    def component_scores(
        self, user_rows: np.ndarray, history: sp.csr_matrix | None = None
    ) -> dict[str, np.ndarray]:
        """Raw scores of each component, keyed like the evaluation's algorithm names."""
        rows = self._input_rows(user_rows, history)
        out: dict[str, np.ndarray] = {}
        if self.ease is not None:
            out["ease-signal"] = self.ease.score(np.arange(rows.shape[0]), history=rows)
        if self.knn is not None:
            out["item-knn-signal"] = self.knn.score(np.arange(rows.shape[0]), history=rows)
        return out

    def recent_popularity(self, reference_times: np.ndarray) -> np.ndarray:
        """Standardised recency-weighted like counts, one row per reference time (likes after it: 0)."""
        out = np.zeros((len(reference_times), self.n_items), dtype=np.float32)
        for row, reference in enumerate(np.asarray(reference_times, dtype=np.float64)):
            ages = (reference - self._liked_times) / SECONDS_PER_DAY
            decay = 0.5 ** (np.clip(ages, 0.0, None) / self.config.recent_half_life_days)
            weights = np.where(ages >= 0.0, decay, 0.0)
            out[row] = np.bincount(self._liked_items, weights=weights, minlength=self.n_items)
            missing = self.config.recent_min_likes - float(weights.sum())
            if missing > 0:
                before = np.bincount(self._liked_items, weights=ages >= 0.0, minlength=self.n_items)
                out[row] += np.float32(missing / max(float(before.sum()), 1.0)) * before.astype(np.float32)
        return standardise(out, self.candidates)

    def score(
        self,
        user_rows: np.ndarray,
        history: sp.csr_matrix | None = None,
        *,
        reference_times: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fused scores; ``reference_times`` (one per user) date the recent-likes prior (default: the
        newest interaction at fit time, i.e. now), as the cold-user evaluation does per user."""
        parts = self.component_scores(user_rows, history)
        fused = np.zeros(next(iter(parts.values())).shape, dtype=np.float32)
        for name, scores in parts.items():
            fused += np.float32(self.config.weights[name]) * standardise(scores, self.candidates)
        lengths = np.diff(self._input_rows(user_rows, history).indptr)
        if self.config.popularity_blend:
            blend = np.array([self.config.popularity_blend.get(int(n), 0.0) for n in lengths], np.float32)
            fused += blend[:, None] * self.popularity
        recent_blend = self.config.recent_popularity_blend
        if recent_blend and self.recent.shape[1] == self.n_items:
            blend = np.array([recent_blend.get(int(n), 0.0) for n in lengths], np.float32)
            if blend.any():
                recent = self.recent if reference_times is None else self.recent_popularity(reference_times)
                fused += blend[:, None] * recent
        fused[:, ~self.candidates] = -np.inf
        if self.content_map is not None and self.mapped_factors is not None:
            rows = self._input_rows(user_rows, history)
            user_factors = self.content_map.user_factors(rows).astype(np.float32)
            mapped = user_factors @ self.mapped_factors
            cold = ~self.candidates
            # z-scores of the new items against the warm items' mapped scores
            warm = mapped[:, self.candidates].astype(np.float64)
            spread = warm.std(axis=1, keepdims=True)
            spread[spread == 0] = 1.0
            new = (
                np.float32(self.config.cold_item_weight)
                * (mapped[:, cold] - warm.mean(axis=1, keepdims=True))
                / spread
            ).astype(np.float32)
            floor = fused[:, self.candidates].min(axis=1) if self.candidates.any() else np.zeros(len(fused))
            fused[:, cold] = _cap_new_items(new, self.config.cold_item_slots, floor.astype(np.float32))
        return fused


def most_interacted(matrix: sp.csr_matrix, item_users: np.ndarray, limit: int) -> sp.csr_matrix:
    """The matrix with all but the ``limit`` most-interacted columns zeroed."""
    if int((item_users > 0).sum()) <= limit:
        return matrix
    keep = np.zeros(matrix.shape[1], dtype=np.float32)
    keep[np.argsort(-item_users, kind="stable")[:limit]] = 1.0
    trimmed = sp.csr_matrix(matrix @ sp.diags(keep))
    trimmed.eliminate_zeros()
    return trimmed


def _cap_new_items(scores: np.ndarray, slots: int, floor: np.ndarray) -> np.ndarray:
    """Each row's ``slots`` best new items keep their scores; the others go just below ``floor`` (the
    row's lowest warm score), keeping their order among themselves: a new item competes for at most
    ``slots`` places of a list, and the ranking of new items among new items does not change."""
    if slots >= scores.shape[1]:
        return scores
    low = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - low + np.float32(1.0)
    out = np.minimum(scores, floor[:, None] - np.float32(2.0) + (scores - low) / span).astype(np.float32)
    if slots > 0:
        best = np.argpartition(-scores, slots - 1, axis=1)[:, :slots]
        rows = np.arange(scores.shape[0])[:, None]
        out[rows, best] = scores[rows, best]
    return out
