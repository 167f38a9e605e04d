"""Cold-start evaluation: items nobody has rated yet, and users with their first 1-5 ratings.

Cold items. A seeded 10% of the items with at least one positive rating become "new": every
rating of them is removed from training. Each user with a positive on a new item ranks *all*
new items (full ranking among them) from their ratings of the warm items; NDCG@10 against
their positives on new items. Compared: content only (the user's profile = mean content
vector of the warm items they rated positively, cosine to the new items) and the learnt
content -> collaborative map (recommend.coldstart.ContentMap), whose factors and ridge are
chosen on a validation split made the same way inside the warm items.

Cold users. A seeded 15% of the users with at least 15 ratings are "new" (a further 15% are the
validation users that choose the blend weights of recommend.serving). Models are fitted on
everyone else's ratings. A new user's first n ratings in time order (n = 1..5) are their
history; the positives among their later ratings are the targets; every item anyone rated in
training is ranked (history excluded). Compared: popularity (all-time interaction counts, the
yardstick) and the served model (``FusedRecommender(SERVING)``, which blends in the popularity of
liked items and the recent likes for short histories). The served model dates its recent-likes
prior at the user's n-th rating and counts only other users' likes up to then: what "now" is for
a user who arrived at that time (served: the newest interaction at fit time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput
from ..recommend.base import mask_excluded, top_k
from ..recommend.coldstart import ContentMap
from ..recommend.content import normalise_rows
from ..recommend.popularity import PopularityRecommender
from ..recommend.serving import SERVING, FusedRecommender, ServingConfig
from .data import RatingsLog
from .metrics import hits_matrix, ndcg_at_k, paired_bootstrap_ratio
from .protocol import CUTOFF
from .split import interaction_matrix

COLD_ITEM_SHARE = 0.10
COLD_USER_SHARE = 0.15
COLD_USER_MIN_RATINGS = 15
HISTORY_LENGTHS = (1, 2, 3, 4, 5)
MAP_GRID: tuple[dict[str, Any], ...] = (
    *({"factors": f, "ridge": r} for f in (32, 64, 128) for r in (0.1, 1.0, 10.0)),
    *({"factors": f, "neighbours": n} for f in (64, 128) for n in (10, 50)),
)
BLEND_LEVELS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
RECENT_LEVELS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
BOOTSTRAP = 1000


def _ndcg(scores: np.ndarray, relevant: sp.csr_matrix, exclude: sp.csr_matrix | None = None) -> np.ndarray:
    ranked = scores.astype(np.float32, copy=True)
    if exclude is not None:
        mask_excluded(ranked, exclude)
    top, _ = top_k(ranked, CUTOFF)
    return ndcg_at_k(hits_matrix(top, relevant), np.diff(relevant.indptr), CUTOFF)


def mean_ci(values: np.ndarray, seed: int) -> list[float]:
    """Mean and its 95% bootstrap interval (over users)."""
    rng = np.random.default_rng(seed)
    if len(values) == 0:
        return [0.0, 0.0, 0.0]
    means = values[rng.integers(0, len(values), (BOOTSTRAP, len(values)))].mean(axis=1)
    return [float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def _matrices(
    log: RatingsLog, strengths: np.ndarray, rows: np.ndarray, positive: float
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """(confidence, signed strength, positives) users x items matrices of the selected ratings."""
    shape = (len(log.user_ids), len(log.item_ids))
    users, items = log.users[rows], log.items[rows]
    strength = interaction_matrix(users, items, strengths[rows], shape)
    confidence = strength.copy()
    confidence.data = (1.0 + confidence.data) / 2.0
    good = rows & (log.ratings >= positive)
    positives = interaction_matrix(log.users[good], log.items[good], np.ones(int(good.sum())), shape)
    return confidence, strength, positives


# ----- cold items ----------------------------------------------------------------------------------
def _cold_item_round(
    log: RatingsLog, strengths: np.ndarray, vectors: np.ndarray, cold: np.ndarray, train_rows: np.ndarray,
    positive: float, grid: Sequence[dict[str, Any]], config: ServingConfig | None,
) -> dict[str, Any]:  # fmt: skip
    """Fit on ``train_rows`` minus the cold items' ratings; rank the cold items for their raters.

    With ``config`` the served model itself (``FusedRecommender(config)`` fitted with the content
    vectors, as models.fit_models does) scores every item and the cold columns are ranked; with
    ``grid`` each ContentMap setting is scored on its own (validation)."""
    is_cold = np.zeros(len(log.item_ids), dtype=bool)
    is_cold[cold] = True
    fit_rows = train_rows & ~is_cold[log.items]
    confidence, strength, positives = _matrices(log, strengths, fit_rows, positive)
    _, _, targets = _matrices(log, strengths, train_rows & is_cold[log.items], positive)
    targets = sp.csr_matrix(targets[:, cold])
    users = np.flatnonzero((np.diff(targets.indptr) > 0) & (np.diff(strength.indptr) > 0))
    relevant = targets[users]
    cold_vectors = vectors[cold]
    profile = normalise_rows(np.asarray(positives[users] @ vectors))
    content = np.asarray(profile @ cold_vectors.T, dtype=np.float32)
    content_ndcg = _ndcg(content, relevant)
    tried = []
    best: tuple[float, dict[str, Any], np.ndarray] = (-1.0, {}, content_ndcg)
    for candidate in grid:
        mapped = ContentMap(**candidate).fit(confidence, vectors).score(strength[users], cold_vectors)
        ndcg = _ndcg(mapped, relevant)
        tried.append({"params": candidate, "ndcg@10": float(ndcg.mean())})
        if ndcg.mean() > best[0]:
            best = (float(ndcg.mean()), dict(candidate), ndcg)
    if config is not None:
        served = FusedRecommender(config).fit(confidence, vectors)
        if served.content_map is None:
            raise InvalidInput("the served model built no content map: too few warm items")
        scores = served.score(np.arange(len(users)), history=strength[users])[:, cold]
        best = (0.0, _map_params(config), _ndcg(scores, relevant))
    return {
        "users": int(len(users)),
        "content": content_ndcg,
        "mapped": best[2],
        "params": best[1],
        "tried": tried,
    }


def _map_params(config: ServingConfig) -> dict[str, Any]:
    """The ContentMap settings of a serving configuration, spelt like MAP_GRID's entries."""
    if config.cold_item_neighbours:
        return {"factors": config.cold_item_factors, "neighbours": config.cold_item_neighbours}
    return {"factors": config.cold_item_factors, "ridge": config.cold_item_ridge}


def cold_item_evaluation(
    log: RatingsLog, strengths: np.ndarray, vectors: np.ndarray, positive: float, seed: int,
    *, config: ServingConfig = SERVING,
) -> dict[str, Any]:  # fmt: skip
    """Cold-item split (see the module docstring): the test split measures the served model
    (``config``); the validation split reports which ContentMap setting it would choose."""
    rng = np.random.default_rng(seed)
    liked_items = np.unique(log.items[log.ratings >= positive])
    cold = np.sort(rng.choice(liked_items, max(1, int(COLD_ITEM_SHARE * len(liked_items))), replace=False))
    everything = np.ones(len(log.users), dtype=bool)
    warm = np.setdiff1d(liked_items, cold)
    validation_cold = np.sort(rng.choice(warm, max(1, int(COLD_ITEM_SHARE * len(warm))), replace=False))
    not_test = ~np.isin(log.items, cold)
    chosen = _cold_item_round(log, strengths, vectors, validation_cold, not_test, positive, MAP_GRID, None)
    test = _cold_item_round(log, strengths, vectors, cold, everything, positive, (), config)
    ratio = float(test["mapped"].mean() / test["content"].mean()) if test["content"].mean() > 0 else None
    return {
        "seed": seed,
        "cold_items": int(len(cold)),
        "evaluated_users": test["users"],
        "params": test["params"],
        "measured": "recommend.serving.FusedRecommender(SERVING) fitted with the content vectors",
        "validation_choice": chosen["params"],
        "validation_grid": chosen["tried"],
        "content_only_ndcg@10": mean_ci(test["content"], seed),
        "content_map_ndcg@10": mean_ci(test["mapped"], seed),
        "ratio": ratio,
        "ratio_95ci": list(paired_bootstrap_ratio(test["mapped"], test["content"], seed=seed))
        if ratio
        else None,
    }


# ----- cold users ----------------------------------------------------------------------------------
def _first_ratings(log: RatingsLog, users: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices of each given user's ratings in time order."""
    wanted = np.isin(log.users, users)
    rows = np.flatnonzero(wanted)
    order = rows[np.lexsort((rows, log.timestamps[rows], log.users[rows]))]
    out: dict[int, np.ndarray] = {}
    bounds = np.flatnonzero(np.diff(log.users[order])) + 1
    for chunk in np.split(order, bounds):
        if len(chunk):
            out[int(log.users[chunk[0]])] = chunk
    return out


def _timestamps(log: RatingsLog, rows: np.ndarray) -> sp.csr_matrix:
    """Users x items rating times (unix seconds) of the selected ratings."""
    shape = (len(log.user_ids), len(log.item_ids))
    times = log.timestamps[rows].astype(np.float64)
    return sp.csr_matrix((times, (log.users[rows], log.items[rows])), shape=shape, dtype=np.float64)


def _fit_served(
    log: RatingsLog, strengths: np.ndarray, fit_rows: np.ndarray, positive: float, config: ServingConfig
) -> tuple[FusedRecommender, PopularityRecommender]:
    """The served model and the popularity baseline, fitted on ``fit_rows`` as models.fit_models does."""
    confidence, _, _ = _matrices(log, strengths, fit_rows, positive)
    fused = FusedRecommender(config).fit(confidence, timestamps=_timestamps(log, fit_rows))
    return fused, PopularityRecommender().fit(confidence)


def _cold_user_scores(
    log: RatingsLog, strengths: np.ndarray, users: np.ndarray, n: int, positive: float,
    models: tuple[FusedRecommender, PopularityRecommender],
) -> tuple[dict[str, np.ndarray], sp.csr_matrix, sp.csr_matrix, np.ndarray] | None:  # fmt: skip
    """Per-user NDCG@10 inputs of one history length: scores, history, targets, reference times.

    A user's reference time is that of their n-th rating: the served model's recent-likes prior
    counts only other users' likes up to it (what "now" is for a user arriving then)."""
    fused, popularity = models
    shape = (len(users), len(log.item_ids))
    ordered = _first_ratings(log, users)
    h_rows, h_cols, h_vals, t_rows, t_cols = [], [], [], [], []
    reference = np.zeros(len(users), dtype=np.float64)
    for position, user in enumerate(users.tolist()):
        rows = ordered[user]
        reference[position] = float(log.timestamps[rows[:n][-1]])
        for r in rows[:n]:
            h_rows.append(position)
            h_cols.append(int(log.items[r]))
            h_vals.append(float(strengths[r]))
        for r in rows[n:]:
            if log.ratings[r] >= positive:
                t_rows.append(position)
                t_cols.append(int(log.items[r]))
    history = sp.csr_matrix((h_vals, (h_rows, h_cols)), shape=shape, dtype=np.float32)
    targets = sp.csr_matrix((np.ones(len(t_rows)), (t_rows, t_cols)), shape=shape, dtype=np.float32)
    targets.data[:] = 1.0
    candidates = fused.candidates
    scores = {
        "popularity": popularity.score(np.zeros(len(users), np.int64)),
        "served": fused.score(np.arange(len(users)), history=history, reference_times=reference),
    }
    for name in scores:
        scores[name] = np.where(candidates[None, :], scores[name], -np.inf).astype(np.float32)
    keep = np.diff(targets.indptr) > 0
    if not keep.any():
        return None
    return {k: v[keep] for k, v in scores.items()}, history[keep], targets[keep], reference[keep]


def _blend_choice(
    log: RatingsLog, strengths: np.ndarray, users: np.ndarray, fit_rows: np.ndarray, positive: float,
    config: ServingConfig,
) -> dict[int, dict[str, Any]]:  # fmt: skip
    """Per history length, the (popularity, recent likes) blend weights with the best validation NDCG@10."""
    blank = replace(config, popularity_blend={}, recent_popularity_blend={n: 1.0 for n in HISTORY_LENGTHS})
    fused, pop = _fit_served(log, strengths, fit_rows, positive, blank)
    fused.config = replace(blank, recent_popularity_blend={})  # scores without either prior
    chosen: dict[int, dict[str, Any]] = {}
    for n in HISTORY_LENGTHS:
        out = _cold_user_scores(log, strengths, users, n, positive, (fused, pop))
        if out is None:
            continue
        scores, history, targets, reference = out
        recent = fused.recent_popularity(reference)
        values = {
            (level, recent_level): float(
                _ndcg(
                    scores["served"] + np.float32(level) * fused.popularity + np.float32(recent_level) * recent,
                    targets, history,
                ).mean()
            )
            for level in BLEND_LEVELS
            for recent_level in RECENT_LEVELS
        }  # fmt: skip
        best = max(values, key=lambda pair: (values[pair], -pair[0] - pair[1]))
        chosen[n] = {
            "popularity": best[0], "recent": best[1], "ndcg@10": values[best],
            "ndcg@10_at_serving": values.get(
                (config.popularity_blend.get(n, 0.0), config.recent_popularity_blend.get(n, 0.0))
            ),
            "ndcg@10_popularity_only": max(values[(level, 0.0)] for level in BLEND_LEVELS),
        }  # fmt: skip
    return chosen


def cold_user_evaluation(
    log: RatingsLog, strengths: np.ndarray, positive: float, seed: int, *, config: ServingConfig = SERVING
) -> dict[str, Any]:
    """Cold-user split (see the module docstring): measures ``config`` and reports the popularity blend
    the validation users would choose (SERVING's blend should match it)."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(log.users, minlength=len(log.user_ids))
    eligible = np.flatnonzero(counts >= COLD_USER_MIN_RATINGS)
    shuffled = rng.permutation(eligible)
    size = max(1, int(COLD_USER_SHARE * len(eligible)))
    test_users, validation_users = np.sort(shuffled[:size]), np.sort(shuffled[size : 2 * size])
    fit_validation = ~np.isin(log.users, np.concatenate([test_users, validation_users]))
    blend = _blend_choice(log, strengths, validation_users, fit_validation, positive, config)
    fit_rows = ~np.isin(log.users, test_users)
    fused, popularity = _fit_served(log, strengths, fit_rows, positive, config)
    rows = []
    for n in HISTORY_LENGTHS:
        out = _cold_user_scores(log, strengths, test_users, n, positive, (fused, popularity))
        if out is None:
            continue
        scores, history, targets, _ = out
        per_user = {name: _ndcg(s, targets, history) for name, s in scores.items()}
        base = per_user["popularity"].mean()
        ratio = float(per_user["served"].mean() / base) if base > 0 else None
        rows.append({
            "history": n, "users": int(targets.shape[0]),
            "popularity_ndcg@10": mean_ci(per_user["popularity"], seed),
            "served_ndcg@10": mean_ci(per_user["served"], seed),
            "ratio": ratio,
            "ratio_95ci": list(paired_bootstrap_ratio(per_user["served"], per_user["popularity"], seed=seed))
            if ratio else None,
        })  # fmt: skip
    return {
        "seed": seed,
        "test_users": int(len(test_users)),
        "popularity_blend": {str(k): v for k, v in config.popularity_blend.items()},
        "recent_popularity_blend": {str(k): v for k, v in config.recent_popularity_blend.items()},
        "recent_half_life_days": config.recent_half_life_days,
        "blend_chosen_on_validation": {str(k): v for k, v in blend.items()},
        "rows": rows,
    }
