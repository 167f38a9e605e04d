"""The served model lets a new item (nobody interacted with it) into at most ``cold_item_slots``
places of a list, and keeps the order of new items among themselves (the cold-item split ranks them)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from metamedia.recommend.serving import SERVING, FusedRecommender


def _data(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(60, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # 40 users on the first 45 items; items 45..59 are new
    dense = (rng.random((40, 45)) < 0.3).astype(np.float32) * rng.uniform(0.5, 1.0, (40, 45)).astype(
        np.float32
    )
    matrix = sp.csr_matrix(np.hstack([dense, np.zeros((40, 15), np.float32)]))
    return matrix, vectors


def test_a_list_holds_at_most_one_new_item_and_new_items_keep_their_order() -> None:
    matrix, vectors = _data()
    capped = FusedRecommender(SERVING).fit(matrix, vectors)
    free = FusedRecommender(replace(SERVING, cold_item_slots=10**6)).fit(matrix, vectors)
    assert SERVING.cold_item_slots == 1 and capped.content_map is not None
    users = np.arange(40)
    history = sp.csr_matrix(matrix * 2.0 - (matrix > 0).astype(np.float32))  # strengths in [-1, 1]
    with_cap = capped.score(users, history=history)
    without = free.score(users, history=history)
    new = ~capped.candidates
    assert new.sum() == 15
    lowest_warm = with_cap[:, capped.candidates].min(axis=1)
    above = (with_cap[:, new] > lowest_warm[:, None]).sum(axis=1)
    assert above.max() <= 1
    assert (without[:, new] > lowest_warm[:, None]).sum(axis=1).max() > 1  # the cap is what holds them back
    for row in range(40):
        assert list(np.argsort(-with_cap[row, new], kind="stable")) == list(
            np.argsort(-without[row, new], kind="stable")
        )
        best = int(np.argmax(without[row, new]))
        assert with_cap[row, new][best] == without[row, new][best]  # the best new item keeps its score
    assert np.array_equal(with_cap[:, capped.candidates], without[:, capped.candidates])
