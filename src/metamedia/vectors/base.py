"""Types shared by the vector store: metrics, precisions, hits, limits."""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

Metric = Literal["cosine", "l2", "dot", "manhattan"]
Precision = Literal["float32", "float16", "int8", "pq"]

METRICS: tuple[str, ...] = ("cosine", "l2", "dot", "manhattan")
PRECISIONS: tuple[str, ...] = ("float32", "float16", "int8", "pq")

# Metrics whose score is a similarity (higher is better); the others are distances (lower is better).
SIMILARITY_METRICS: frozenset[str] = frozenset({"cosine", "dot"})

MAX_DIM = 4096
MAX_BATCH = 10_000
MAX_K = 10_000
MAX_EF = 4096
MAX_M = 256
MAX_EF_CONSTRUCTION = 4096


class Hit(NamedTuple):
    """One search result: the point's id and its score under the collection's metric.

    For cosine and dot the score is a similarity (higher is better); for l2 it is the
    Euclidean distance (not squared) and for manhattan the L1 distance (lower is better).
    A named tuple: a batch of 1,000 queries builds 10,000 of them, and tuples build fast.
    """

    id: int
    score: float


class Neighbours(NamedTuple):
    """A batch of search results as arrays (no Python object per hit), like faiss's own answer.

    `ids` (n, k) int64 and `scores` (n, k) float32, best first per row. Where a query has fewer
    than k results the row is padded with id -1 and score NaN: test `np.isnan(scores)`, since -1
    may also be a real point id.
    """

    ids: np.ndarray
    scores: np.ndarray


def higher_is_better(metric: str) -> bool:
    """True when a larger score means a closer match under `metric`."""
    return metric in SIMILARITY_METRICS
