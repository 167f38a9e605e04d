"""Memory hygiene: near-duplicate strategies and episodes are merged, keeping every row and its history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .reflexion import ReflexionMemory
from .strategies import ReasoningBank

STRATEGY_DUPLICATE_SIMILARITY = 0.95
EPISODE_DUPLICATE_SIMILARITY = 0.98


@dataclass(frozen=True)
class Merge:
    """`merged` was folded into `survivor`."""

    survivor: str
    merged: str
    similarity: float


def merge_duplicate_strategies(
    bank: ReasoningBank, *, threshold: float = STRATEGY_DUPLICATE_SIMILARITY
) -> list[Merge]:
    """Merge active strategies of the same task type and rule whose embeddings are >= threshold alike.

    The survivor is the one with more uses (the older on a tie); it absorbs the other's outcome
    counts, and the other is kept with status "merged" and a pointer to the survivor.
    """
    active = bank.list_strategies()
    vectors = bank.embeddings([s.id for s in active])
    by_key: dict[tuple[str, str | None], list[str]] = {}
    for s in active:
        by_key.setdefault((s.task_type, s.rule), []).append(s.id)
    merges: list[Merge] = []
    stats = {s.id: s for s in active}
    for ids in by_key.values():
        if len(ids) < 2:
            continue
        ranked = sorted(ids, key=lambda i: (-stats[i].uses, stats[i].created_at))
        matrix = np.vstack([vectors[i] for i in ranked])
        sims = matrix @ matrix.T
        gone: set[int] = set()
        for a in range(len(ranked)):
            if a in gone:
                continue
            for b in np.flatnonzero(sims[a, a + 1 :] >= threshold) + a + 1:
                if int(b) in gone:
                    continue
                keeper, other, similarity = ranked[a], ranked[int(b)], float(sims[a, b])
                bank.absorb_statistics(keeper, stats[other])
                bank.retire(
                    other,
                    status="merged",
                    replaced_by=keeper,
                    reason=f"near-duplicate of {keeper} ({similarity:.3f})",
                    reload=False,
                )
                gone.add(int(b))
                merges.append(Merge(keeper, other, similarity))
    if merges:
        bank.reload()
    return merges


def merge_duplicate_episodes(
    reflexion: ReflexionMemory, *, threshold: float = EPISODE_DUPLICATE_SIMILARITY
) -> list[Merge]:
    """Merge active episodes of the same user, task, item, action and outcome whose embeddings are alike.

    The oldest survives with its weight increased by the duplicate's, so counts stay right.
    """
    groups: dict[tuple[str, str, str | None, str, bool], list[str]] = {}
    for ep in reflexion.episodes():
        groups.setdefault((ep.user_id, ep.task, ep.item_id, ep.action, ep.success), []).append(ep.id)
    merges: list[Merge] = []
    stored = reflexion.embeddings([i for ids in groups.values() if len(ids) > 1 for i in ids])
    for ids in groups.values():
        if len(ids) < 2:
            continue
        vectors = np.vstack([stored[i] for i in ids])
        sims = vectors @ vectors.T
        gone: set[int] = set()
        for a in range(len(ids)):
            if a in gone:
                continue
            for b in range(a + 1, len(ids)):
                if b not in gone and sims[a, b] >= threshold:
                    reflexion.mark_merged(ids[b], ids[a])
                    gone.add(b)
                    merges.append(Merge(ids[a], ids[b], float(sims[a, b])))
    return merges
