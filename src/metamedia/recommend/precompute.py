"""Served-model scores of every known user, computed once per fit.

Scoring one user with EASE on a catalog of ~10k items reads a users x items (or items x items)
matrix per request; scoring all users in a few batches at fit time reads it once. A row answers
a request only while the user's history is exactly what the fit saw (same number of events and
same latest event time): any write of theirs makes the service score them live again, so the
answer never differs from live scoring.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from .base import ScoringRecommender

# Memory bound of the precomputed rows (float32 cells: 32M = 128 MB); the most recently active
# users come first when not everyone fits.
MAX_CELLS = 32_000_000
BATCH_USERS = 256

Event = tuple[int, float, float]  # (item_id, strength, timestamp), as models.fit_models reads them


def current_row(
    index: Mapping[str, tuple[int, int, float]], user: str, events: Sequence[tuple[Any, ...]]
) -> int | None:
    """The user's stored row while their history (``events``, oldest first, the time third) is
    still what the fit saw: same number of events and same latest event time."""
    entry = index.get(user)
    if entry is None or not events:
        return None
    row, count, latest = entry
    if len(events) != count or events[-1][2] != latest:
        return None
    return row


@dataclass(frozen=True)
class PrecomputedScores:
    """Score rows of users as of the fit, keyed by user with the history fingerprint they came from."""

    rows: np.ndarray  # users x items, float32
    index: dict[str, tuple[int, int, float]]  # user -> (row, event count, latest event time)

    def get(self, user: str, events: Sequence[tuple[int, float, float, str]]) -> np.ndarray | None:
        """The user's row when ``events`` (their current history) is still what the fit saw."""
        row = current_row(self.index, user, events)
        return None if row is None else self.rows[row]


def precompute_scores(
    model: ScoringRecommender,
    per_user: Mapping[str, list[Event]],
    to_row: Callable[[list[Event]], sp.csr_matrix],
    n_items: int,
    *,
    max_cells: int = MAX_CELLS,
) -> PrecomputedScores:
    """Score the users whose rows fit in ``max_cells`` (most recent first); ``to_row`` turns a
    history into the 1 x items input row the service scores the model from."""
    capacity = max_cells // max(1, n_items)
    users = [u for u in per_user if per_user[u]]
    users = sorted(users, key=lambda u: -per_user[u][-1][2])[:capacity]
    rows = np.empty((len(users), n_items), dtype=np.float32)
    for start in range(0, len(users), BATCH_USERS):
        chunk = users[start : start + BATCH_USERS]
        history = sp.csr_matrix(sp.vstack([to_row(per_user[u]) for u in chunk]))
        rows[start : start + len(chunk)] = model.score(np.arange(len(chunk)), history=history)
    index = {u: (r, len(per_user[u]), per_user[u][-1][2]) for r, u in enumerate(users)}
    return PrecomputedScores(rows, index)


# Columns kept per user and arm: the served pool is max(50, 4k), so requests with k <= 25 and
# filters that leave enough of the stored head answer from it; deeper ones are scored live.
POOL_DEPTH = 200
# The arms the bandit may explore besides the fused default, scored per request otherwise (EASE and
# ALS ~50 ms, GF-CF ~150 ms on the demo catalog: a few percent of explored requests set the p99).
POOL_ARMS = ("itemknn", "als", "ease", "graph")
# Users with stored heads per arm (the most recently active first): 16 MB per arm; the others score live.
POOL_USERS = 10_000


@dataclass(frozen=True)
class PrecomputedPools:
    """Each known user's best unseen columns under one model as of the fit, best first.

    A user's ``columns`` are the head of the model's full ranking (score descending, then column),
    finite scores only, without the items of their history; it answers while their history is
    what the fit saw, like ``PrecomputedScores.get``.
    """

    columns: np.ndarray  # users x depth, int32, -1 past the end of a short row
    scores: np.ndarray  # users x depth, float32
    index: dict[str, tuple[int, int, float]]

    def pool(
        self, user: str, events: Sequence[tuple[int, float, float, str]], allowed: np.ndarray, size: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The ``size`` best allowed columns and their scores, exactly as scoring the whole row live
        would give them, or None when the history changed or the stored head holds too few."""
        row = current_row(self.index, user, events)
        if row is None:
            return None
        columns = self.columns[row]
        columns = columns[columns >= 0]
        keep = allowed[columns]
        if int(keep.sum()) < size:
            return None
        head = np.flatnonzero(keep)[:size]
        return columns[head].astype(np.int64), self.scores[row][head]


def precompute_pools(
    model: ScoringRecommender,
    per_user: Mapping[str, list[Event]],
    to_row: Callable[[list[Event]], sp.csr_matrix],
    position: Mapping[int, int],
    n_items: int,
    *,
    depth: int = POOL_DEPTH,
    max_users: int = POOL_USERS,
) -> PrecomputedPools:
    """The head of every known user's ranking by ``model`` (most recent users first, up to ``max_users``)."""
    users = [u for u in per_user if per_user[u]]
    users = sorted(users, key=lambda u: -per_user[u][-1][2])[:max_users]
    columns = np.full((len(users), depth), -1, dtype=np.int32)
    scores = np.full((len(users), depth), -np.inf, dtype=np.float32)
    for start in range(0, len(users), BATCH_USERS):
        chunk = users[start : start + BATCH_USERS]
        history = sp.csr_matrix(sp.vstack([to_row(per_user[u]) for u in chunk]))
        block = np.asarray(model.score(np.arange(len(chunk)), history=history), dtype=np.float32)
        for offset, user in enumerate(chunk):
            row = block[offset]
            seen = [position[i] for i, _, _ in per_user[user] if i in position]
            row[seen] = -np.inf
            finite = np.flatnonzero(np.isfinite(row))
            if finite.size > depth:
                finite = finite[np.argpartition(-row[finite], depth - 1)[:depth]]
            head = finite[np.lexsort((finite, -row[finite]))][:depth]
            columns[start + offset, : head.size] = head
            scores[start + offset, : head.size] = row[head]
    index = {u: (r, len(per_user[u]), per_user[u][-1][2]) for r, u in enumerate(users)}
    return PrecomputedPools(columns, scores, index)
