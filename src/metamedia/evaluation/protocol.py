"""The evaluation protocol: what a model sees, what it must predict, and how a ranking is scored.

- Split: per user, the last 20% of interactions by time are the test set; validation is
  carved the same way from the remaining training part (see split.temporal_split).
- Positives: held-out interactions rated >= 4.0 (on 1-10 scales, >= 8.0).
- Candidates: every item with at least one interaction in the phase's fitting data, for
  every algorithm alike; an item nobody had in training cannot be recommended, but a
  held-out positive on such an item still counts in the user's denominator.
- Each user's fitting items are excluded from their ranking; users without a held-out
  positive are not evaluated (counted in the report).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..recommend.base import mask_excluded, top_k
from .data import RatingsLog
from .metrics import (
    average_precision_at_k,
    catalog_coverage,
    hits_matrix,
    intra_list_diversity,
    ndcg_at_k,
    novelty,
    recall_at_k,
)
from .split import interaction_matrix

POSITIVE_RATING = {"five": 4.0, "ten": 8.0}
CUTOFF = 10  # NDCG@10, MAP@10, coverage, diversity and novelty of the top 10
RECALL_CUTOFF = 20


@dataclass(frozen=True)
class Phase:
    """One fit-then-predict round: validation (tuning) or test (reporting)."""

    name: str
    binary: sp.csr_matrix  # users x items, 1 per fitting interaction
    strength: sp.csr_matrix  # signal strength of each fitting rating, in [-1, 1]
    confidence: sp.csr_matrix  # (1 + strength) / 2, in [0, 1]
    timestamps: sp.csr_matrix  # unix seconds, float64, same sparsity as binary
    candidates: np.ndarray  # bool per item: rankable in this phase
    users: np.ndarray  # evaluated user rows (with at least one held-out positive)
    relevant: sp.csr_matrix  # evaluated users x items, the held-out positives
    popularity_share: np.ndarray  # share of users with each item in the fitting data
    held_out_positives: int
    unreachable_positives: int  # held-out positives on items outside the candidates


def build_phase(
    name: str,
    log: RatingsLog,
    strengths: np.ndarray,
    fit_rows: np.ndarray,
    target_rows: np.ndarray,
    positive_rating: float,
) -> Phase:
    """Matrices and targets of one phase from boolean row masks over the ratings log."""
    shape = (len(log.user_ids), len(log.item_ids))
    users, items = log.users[fit_rows], log.items[fit_rows]
    binary = interaction_matrix(users, items, np.ones(len(users)), shape)
    strength = interaction_matrix(users, items, strengths[fit_rows], shape)
    confidence = strength.copy()
    confidence.data = (1.0 + confidence.data) / 2.0
    timestamps = interaction_matrix(users, items, log.timestamps[fit_rows], shape, dtype=np.float64)
    positive = target_rows & (log.ratings >= positive_rating)
    targets = interaction_matrix(
        log.users[positive], log.items[positive], np.ones(int(positive.sum())), shape
    )
    evaluated = np.flatnonzero(np.diff(targets.indptr) > 0)
    item_users = np.diff(binary.tocsc().indptr)
    candidates = item_users > 0
    relevant = targets[evaluated]
    return Phase(
        name=name,
        binary=binary,
        strength=strength,
        confidence=confidence,
        timestamps=timestamps,
        candidates=candidates,
        users=evaluated,
        relevant=relevant,
        popularity_share=item_users / shape[0],
        held_out_positives=int(relevant.nnz),
        unreachable_positives=int((~candidates[relevant.indices]).sum()),
    )


@dataclass
class RankingResult:
    """Metrics of one algorithm in one phase, plus what fusion and plots need."""

    metrics: dict[str, float]
    ndcg_per_user: np.ndarray
    top: np.ndarray  # (n_evaluated_users, RECALL_CUTOFF) item indices


def evaluate_scores(scores: np.ndarray, phase: Phase, item_vectors: np.ndarray) -> RankingResult:
    """Rank the candidates for every evaluated user (fitting items excluded) and score the lists.

    ``scores`` has one row per ``phase.users`` entry and one column per item.
    """
    ranked = np.where(phase.candidates[None, :], scores, -np.inf).astype(np.float32)
    mask_excluded(ranked, phase.binary[phase.users])
    top, _ = top_k(ranked, RECALL_CUTOFF)
    hits = hits_matrix(top, phase.relevant)
    n_relevant = np.diff(phase.relevant.indptr)
    ndcg = ndcg_at_k(hits, n_relevant, CUTOFF)
    head = top[:, :CUTOFF]
    metrics = {
        "ndcg@10": float(ndcg.mean()),
        "recall@20": float(recall_at_k(hits, n_relevant, RECALL_CUTOFF).mean()),
        "map@10": float(average_precision_at_k(hits, n_relevant, CUTOFF).mean()),
        "coverage@10": catalog_coverage(head, int(phase.candidates.sum())),
        "diversity@10": intra_list_diversity(head, item_vectors),
        "novelty@10": novelty(head, phase.popularity_share),
    }
    return RankingResult(metrics=metrics, ndcg_per_user=ndcg, top=top)
