"""The last step of a recommendation: agent memory's reranker over the diversified, explained list."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..memory.rules import DIVERSIFIED
from ..memory.rules import Candidate as MemoryCandidate
from .ports import MemoryReranker
from .rerank import RankedItem


def session_context(ctx: dict[str, Any], stated: dict[str, Any]) -> dict[str, Any]:
    """The request context memory's rules act on: the hour only when the client stated it, and the
    list marked as diversified.

    ``with_time`` fills the hour in from the server's clock (for the bandit's and memory's logs), but a
    daypart rule (session_fit: longer films in the evening, shorter ones over lunch) is about the
    viewer's session, and the server's clock is not the viewer's (another time zone; a replay). Acting
    on it reordered every list by the server's time of day: on the served-path validation replay
    (bench/README.md, issue 16) the lunch rule cost 4.2% / 3.5% of NDCG@10 (seeds 0 / 1) whenever
    the server's clock said 11-14 h, and the measured served path depended on when it ran. The
    weekday stays filled in (the viewer's too except near midnight): weekday/weekend strategies match.

    The list memory gets was diversified by MMR already (``SERVING.mmr_lambda``), so memory's slate
    diversity rule does not run a second pass (``DIVERSIFIED``): on the validation replay the two
    passes together cost 4.1% of NDCG@10 against no diversity (mean of seeds 0 and 1), MMR alone
    1.0%, memory's rule alone 4.5%.
    """
    out = {key: value for key, value in ctx.items() if key != "hour" or stated.get("hour") is not None}
    return {**out, DIVERSIFIED: True}


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
