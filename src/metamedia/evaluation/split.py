"""Temporal per-user hold-out: each user's latest interactions are the ones to predict."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..errors import InvalidInput


def temporal_split(
    users: np.ndarray,
    timestamps: np.ndarray,
    candidates: np.ndarray | None = None,
    *,
    holdout_fraction: float = 0.2,
    seed: int = 0,
) -> np.ndarray:
    """A boolean mask of the held-out rows: each user's last ``holdout_fraction`` by time.

    A user with n rows (among ``candidates``, default all) holds out ceil(fraction * n) of
    them, but always keeps at least one in training; users with a single row hold out
    nothing. Rows with equal timestamps (MovieLens often stores a whole session under one
    second) are ordered by a random permutation drawn from ``seed``, so ties do not favour
    low movieIds and the split is the same on every run.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise InvalidInput(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    if users.shape != timestamps.shape:
        raise InvalidInput("users and timestamps must have the same length")
    rows = np.arange(len(users)) if candidates is None else np.flatnonzero(candidates)
    tie_break = np.random.default_rng(seed).permutation(len(rows))
    order = rows[np.lexsort((tie_break, timestamps[rows], users[rows]))]
    held_out = np.zeros(len(users), dtype=bool)
    boundaries = np.flatnonzero(np.diff(users[order])) + 1
    for group in np.split(order, boundaries):
        count = len(group)
        if count < 2:
            continue
        n_out = min(count - 1, math.ceil(holdout_fraction * count))
        held_out[group[count - n_out :]] = True
    return held_out


def interaction_matrix(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    shape: tuple[int, int],
    dtype: type = np.float32,
) -> sp.csr_matrix:
    """A users x items CSR matrix (float64 for timestamps); duplicate cells keep the last value."""
    if not (len(users) == len(items) == len(values)):
        raise InvalidInput("users, items and values must have the same length")
    keys = users.astype(np.int64) * shape[1] + items.astype(np.int64)
    # The last occurrence of each cell wins, like a re-rating replacing the old one.
    _, last = np.unique(keys[::-1], return_index=True)
    keep = len(keys) - 1 - last
    matrix = sp.csr_matrix((values[keep].astype(dtype), (users[keep], items[keep])), shape=shape, dtype=dtype)
    matrix.sort_indices()
    return matrix
