"""The recommendation algorithms by name, declared once.

`algorithm=` of a request (Python, HTTP, MCP, CLI) takes a `name`; the bandit's arms are the `arm`
names (the spelling the evaluation harness and replay use for the same model). The recommender,
the bandit's default arms, the MCP tool description and the HTTP enum all come from this table
(tests/test_domain.py checks the HTTP enum against it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Algorithm:
    name: str  # as a request names it
    arm: str | None  # the bandit arm serving it, None when the bandit never picks it
    summary: str


AUTO = "auto"  # the bandit chooses among the arms
REGISTRY: tuple[Algorithm, ...] = (
    Algorithm(
        "fused", "fused", "the served default: EASE + item-kNN on signal strengths (recommend.serving)"
    ),
    Algorithm("popularity", "popularity", "most-interacted items"),
    Algorithm("trending", None, "popularity with recent interactions weighted higher"),
    Algorithm("content", "content", "the user's preference vector against item vectors"),
    Algorithm("itemknn", "item-knn", "item-item cosine kNN"),
    Algorithm("als", "als", "implicit ALS matrix factorisation"),
    Algorithm("ease", "ease", "EASE closed-form linear autoencoder"),
    Algorithm("graph", "gf-cf", "GF-CF graph filter"),
    Algorithm("hybrid", None, "weighted fusion of the others"),
)
ALGORITHM_NAMES: tuple[str, ...] = (AUTO, *(a.name for a in REGISTRY))
ARM_ALGORITHM: dict[str, str] = {a.arm: a.name for a in REGISTRY if a.arm is not None}
# The bandit's arms in the order it was always seeded with.
BANDIT_ARMS: tuple[str, ...] = ("fused", "popularity", "item-knn", "als", "ease", "gf-cf", "content")
