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

import numpy as np
import scipy.sparse as sp

from .base import ScoringRecommender

# Memory bound of the precomputed rows (float32 cells: 32M = 128 MB); the most recently active
# users come first when not everyone fits.
MAX_CELLS = 32_000_000
BATCH_USERS = 256

Event = tuple[int, float, float]  # (item_id, strength, timestamp), as models.fit_models reads them


@dataclass(frozen=True)
class PrecomputedScores:
    """Score rows of users as of the fit, keyed by user with the history fingerprint they came from."""

    rows: np.ndarray  # users x items, float32
    index: dict[str, tuple[int, int, float]]  # user -> (row, event count, latest event time)

    def get(self, user: str, events: Sequence[tuple[int, float, float, str]]) -> np.ndarray | None:
        """The user's row when ``events`` (their current history) is still what the fit saw."""
        entry = self.index.get(user)
        if entry is None or not events:
            return None
        row, count, latest = entry
        if len(events) != count or events[-1][2] != latest:
            return None
        return self.rows[row]


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
