"""Fusion of lexical, dense and structured evidence into one score per candidate.

Each candidate gets a small feature vector (below); the score is their weighted sum. The weights are
fitted on the development split of the public benchmark (`bench/search_quality.py --fit`), never on
hand-picked queries, and copied here with the run that produced them.

Items without an overview have no plot: their text similarity and dense rank are 0, so they compete on
title, keywords (lexical), genres, moods and quality only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ..models import MediaItem

FEATURES = (
    "text",  # cosine of query text and item text (0 without an overview)
    "dense_rank",  # 1 / (1 + rank / 60) in the dense list (0 when absent or without an overview)
    "lexical",  # engine relevance (bm25 / ts_rank_cd) over the best in this query's lexical list
    "lexical_rank",  # 1 / (1 + rank / 60) in the lexical list
    "title",  # the query names the title (exact 1.0, fuzzy ratio >= 0.88), else 0
    "title_words",  # share of query words in the title times share of title words asked for
    "genre",  # share of the asked genres the item has
    "mood",  # mean strength of the asked moods
    "quality",  # rating centred on 6.5, trusted by votes (-1..1)
    "votes",  # log votes, 0..1 (how known the item is)
    "origin",  # the item is of the asked origin ("french films": original language French), else 0
)
# Fitted on the dev split of the public benchmark by `bench/search_quality.py --fit --write` (coordinate
# ascent on mean NDCG@10) and stored as data beside this module with the run's dev and test figures.
WEIGHTS_FILE = "fusion_weights.json"


def load_weights() -> dict[str, float]:
    """The fitted weights shipped with the package (fusion_weights.json), one per FEATURES name."""
    data = json.loads(resources.files(__package__ or "metamedia.search").joinpath(WEIGHTS_FILE).read_text())
    weights = {name: float(data["weights"].get(name, 0.0)) for name in FEATURES}
    return weights


WEIGHTS: dict[str, float] = load_weights()
TITLE_FIRST = 10.0  # added when the whole query names the title: such items come first
RANK_SCALE = 60.0


@dataclass
class Candidate:
    """One item in the pool, with what each retriever said about it."""

    item: MediaItem
    dense_rank: int | None = None
    lexical_rank: int | None = None
    lexical_score: float = 0.0
    text_sim: float = 0.0
    title_sim: float = 0.0
    title_cover: float = 0.0
    origin: bool = False  # of the origin the query asks for (language or production country)
    vector: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))


def _rank_feature(rank: int | None) -> float:
    return 0.0 if rank is None else 1.0 / (1.0 + rank / RANK_SCALE)


def feature_matrix(
    pool: list[Candidate], *, wanted_genres: list[str], moods: dict[int, float], quality: dict[int, float]
) -> np.ndarray:
    """Rows = candidates, columns = FEATURES."""
    best_lex = max((c.lexical_score for c in pool), default=0.0) or 1.0
    wanted = set(wanted_genres)
    rows = []
    for c in pool:
        it = c.item
        has_plot = bool(it.overview)
        genre = len(wanted.intersection(it.genres)) / len(wanted_genres) if wanted_genres else 0.0
        rows.append(
            [
                c.text_sim if has_plot else 0.0,
                _rank_feature(c.dense_rank) if has_plot else 0.0,
                c.lexical_score / best_lex,
                _rank_feature(c.lexical_rank),
                c.title_sim,
                c.title_cover,
                genre,
                moods.get(it.id, 0.0),
                quality.get(it.id, 0.0),
                _votes_feature(it.vote_count or 0),
                1.0 if c.origin else 0.0,
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(pool), len(FEATURES))


@lru_cache(maxsize=65536)
def _votes_feature(votes: int) -> float:
    """Log votes, 0..1 (remembered per vote count: the same items come back query after query)."""
    return min(1.0, math.log1p(votes) / math.log1p(10000))


def weight_vector(weights: dict[str, float] | None = None) -> np.ndarray:
    chosen = WEIGHTS if weights is None else weights
    return np.array([chosen.get(name, 0.0) for name in FEATURES], dtype=np.float64)


def passes_filters(item: MediaItem, flt: dict[str, Any] | None) -> bool:
    """The vector-store filter of `build_filter`, checked on a stored item (for lexical-only candidates)."""
    if not flt:
        return True
    payload = {
        "year": item.year,
        "rating": item.vote_average,
        "votes": item.vote_count,
        "runtime": item.runtime,
        "type": item.media_type,
        "genres": item.genres,
    }
    for cond in flt.get("must", []):
        if not _holds(payload, cond):
            return False
    return not any(_holds(payload, cond) for cond in flt.get("must_not", []))


def _holds(payload: dict[str, Any], cond: dict[str, Any]) -> bool:
    value = payload.get(cond["field"])
    if "range" in cond:
        if value is None:
            return False
        rng = cond["range"]
        return ("gte" not in rng or value >= rng["gte"]) and ("lte" not in rng or value <= rng["lte"])
    if "eq" in cond:
        return bool(value == cond["eq"])
    if "in" in cond:
        values = value if isinstance(value, list) else [value]
        return any(v in cond["in"] for v in values)
    raise ValueError(f"unsupported filter condition {cond}")
