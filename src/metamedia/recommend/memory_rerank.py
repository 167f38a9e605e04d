"""The last step of a recommendation: agent memory's reranker over the diversified, explained list."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..memory.rules import Candidate as MemoryCandidate
from .ports import MemoryReranker
from .rerank import RankedItem


def memory_rerank(
    reranker: MemoryReranker, user: str, ranked: Sequence[RankedItem], catalog: Any, ctx: dict[str, Any], k: int
) -> tuple[list[tuple[int, float, list[str]]], list[str], dict[int, list[str]]]:
    """Memory's reranker over the list (position scores, so it keeps the MMR order unless a rule acts):
    the k best as (item id, score, reasons), memory's notes, and the strategies that touched each item."""
    memory_in = []
    for position, item in enumerate(ranked):
        column = catalog.position[item.item_id]
        memory_in.append(
            MemoryCandidate(
                item_id=str(item.item_id),
                score=1.0 - position / max(1, len(ranked)),
                genres=list(catalog.genres[column]),
                title=catalog.titles[column],
                runtime=None if math.isnan(catalog.runtime[column]) else int(catalog.runtime[column]),
                vote_average=None if math.isnan(catalog.rating[column]) else float(catalog.rating[column]),
                reasons=[item.explanation],
            )
        )
    result = reranker.rerank(user, memory_in, ctx, {})
    out = [(int(c.item_id), float(c.score), list(dict.fromkeys(c.reasons))) for c in result.candidates[:k]]
    return out, list(result.notes), {int(c.item_id): list(c.strategy_ids) for c in result.candidates[:k]}
