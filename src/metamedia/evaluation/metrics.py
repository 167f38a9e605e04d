"""Top-k ranking metrics with binary relevance, one value per user, plus list-level measures.

Every per-user function takes ``hits`` (n_users x k bool: is the item at rank r relevant?)
and ``n_relevant`` (each user's number of relevant items, including ones no model could
rank). Rows of ``recommended`` may be padded with -1 where fewer than k items were ranked.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput


def hits_matrix(recommended: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """hits[u, r] is True when recommended[u, r] is a stored cell of ``relevant`` row u."""
    if recommended.shape[0] != relevant.shape[0]:
        raise InvalidInput("recommended and relevant must have one row per user")
    hits = np.zeros(recommended.shape, dtype=bool)
    for user in range(recommended.shape[0]):
        positives = relevant.indices[relevant.indptr[user] : relevant.indptr[user + 1]]
        hits[user] = np.isin(recommended[user], positives) & (recommended[user] >= 0)
    return hits


def _check(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    if k <= 0 or hits.ndim != 2 or hits.shape[1] < k:
        raise InvalidInput(f"need a 2-D hits array with at least k={k} columns, got {hits.shape}")
    if len(n_relevant) != hits.shape[0]:
        raise InvalidInput("n_relevant must have one entry per user")
    if np.any(n_relevant <= 0):
        raise InvalidInput("every evaluated user needs at least one relevant item")
    return hits[:, :k].astype(np.float64)


def ndcg_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """DCG = sum of 1/log2(rank + 1) over hits; ideal DCG puts min(n_relevant, k) hits first."""
    gains = _check(hits, n_relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = gains @ discounts
    ideal = np.cumsum(discounts)[np.minimum(n_relevant, k) - 1]
    return dcg / ideal


def recall_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """Hits in the top k divided by min(n_relevant, k), so a perfect list scores 1."""
    gains = _check(hits, n_relevant, k)
    return gains.sum(axis=1) / np.minimum(n_relevant, k)


def average_precision_at_k(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> np.ndarray:
    """AP@k = sum over hit ranks r of precision@r, divided by min(n_relevant, k)."""
    gains = _check(hits, n_relevant, k)
    precision = np.cumsum(gains, axis=1) / np.arange(1, k + 1)
    return (precision * gains).sum(axis=1) / np.minimum(n_relevant, k)


def catalog_coverage(recommended: np.ndarray, catalog_size: int) -> float:
    """Distinct items recommended to anyone, as a share of the rankable catalog."""
    if catalog_size <= 0:
        raise InvalidInput("catalog_size must be positive")
    distinct = np.unique(recommended[recommended >= 0])
    return float(len(distinct)) / catalog_size


def intra_list_diversity(recommended: np.ndarray, item_vectors: np.ndarray) -> float:
    """Mean over users of the mean pairwise (1 - cosine) between their recommended items.

    ``item_vectors`` rows are unit length (zero rows count as orthogonal to everything).
    Lists with fewer than two items are skipped.
    """
    values: list[float] = []
    for row in recommended:
        items = row[row >= 0]
        if len(items) < 2:
            continue
        vectors = item_vectors[items]
        cosine = vectors @ vectors.T
        upper = np.triu_indices(len(items), 1)
        values.append(float(np.mean(1.0 - cosine[upper])))
    return float(np.mean(values)) if values else 0.0


def novelty(recommended: np.ndarray, popularity_share: np.ndarray) -> float:
    """Mean self-information -log2(p_i) of recommended items, p_i = share of users who had item i.

    A share of 0 is rejected rather than treated as infinitely novel: only items someone
    had in training can be recommended.
    """
    items = recommended[recommended >= 0]
    if len(items) == 0:
        return 0.0
    shares = popularity_share[items]
    if np.any(shares <= 0):
        raise InvalidInput("popularity_share must be positive for every recommended item")
    return float(np.mean(-np.log2(shares)))


def paired_bootstrap_ratio(
    numerator: np.ndarray, denominator: np.ndarray, *, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% interval of mean(numerator) / mean(denominator) over users resampled with replacement.

    Both arrays hold one value per user, paired; the same users are drawn for both.
    """
    if numerator.shape != denominator.shape or numerator.ndim != 1 or len(numerator) == 0:
        raise InvalidInput("paired bootstrap needs two non-empty 1-D arrays of equal length")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(numerator), size=(resamples, len(numerator)))
    bottom = denominator[draws].mean(axis=1)
    ratios = np.divide(
        numerator[draws].mean(axis=1), bottom, out=np.full(resamples, np.nan), where=bottom > 0
    )
    low, high = np.nanpercentile(ratios, [2.5, 97.5])
    return float(low), float(high)
