"""The query planner: exact search over the allowed points, or HNSW with a bitmap and adaptive ef.

A filtered HNSW walk degrades when allowed points are rare *near the query*: it must cross many
rejected nodes before it finds k allowed ones. Global selectivity is not enough to predict this:
on 25k clustered points, a uniform 10% filter keeps recall@10 at .995 with ef=200, but a 10%
filter whose clusters exclude the query's neighbourhood gives .40 at ef=200 and .90 at ef=1600,
while exact search over the allowed points is 1.0 in ~60 µs. So the planner:

1. no allowed point -> empty; few allowed points (<= exact_max), selectivity below
   GRAPH_MIN_SELECTIVITY, or an untrained index -> exact search over exactly those points;
2. otherwise, when a filter or tombstones apply, probes the unfiltered graph (PROBE candidates)
   around each query. If the probe already holds enough allowed candidates they are the answer;
   otherwise ef = k / local selectivity * EF_PER_SELECTIVITY, and when that walk would cost more
   than scanning the allowed points (EXACT_COST_WEIGHT), the query goes exact.
3. a graph search that still returns fewer than k allowed points is redone exactly, so a search
   never returns fewer than k results when k points match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .base import MAX_EF

GRAPH_MIN_SELECTIVITY = 0.02
EF_PER_SELECTIVITY = 2.0
PROBE = 64
# A graph walk computes about GRAPH_DISTANCES_PER_EF * m distances per unit of ef (measured with
# faiss.cvar.hnsw_stats on clustered 384-d data: ~1,500-2,000 at ef=64, m=16).
GRAPH_DISTANCES_PER_EF = 2.0
# One distance of an exact selector scan costs about this many graph distances (100k x 384:
# scanning 10k allowed points took 3.4 ms, an ef=200 walk ~1 ms for ~6,400 distances).
EXACT_COST_WEIGHT = 3.0


@dataclass(frozen=True)
class Plan:
    """How one search runs (before the per-query probe refines filtered graph searches)."""

    kind: Literal["empty", "exact", "graph"]
    k: int  # results to return per query (min of k and the allowed count)
    fetch: int  # candidates to re-rank (k x rerank for quantised indexes, else k)
    ef: int
    allowed: int
    selectivity: float  # allowed / labels in the graph (deleted labels included)
    filtered: bool  # the graph needs the allowed-label bitmap

    def describe(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "k": self.k,
            "fetch": self.fetch,
            "ef": self.ef,
            "allowed": self.allowed,
            "selectivity": round(self.selectivity, 6),
            "probe": self.kind == "graph" and self.filtered,
        }


def plan_search(
    *,
    k: int,
    ef: int,
    allowed: int,
    labels: int,
    graph_ready: bool,
    rerank: int,
    exact_max: int,
) -> Plan:
    """Choose exact or graph search for `allowed` of `labels` points."""
    if allowed == 0:
        return Plan("empty", 0, 0, ef, 0, 0.0, False)
    selectivity = allowed / labels
    k_eff = min(k, allowed)
    fetch = min(k_eff * rerank, allowed)
    filtered = allowed < labels
    if not graph_ready or allowed <= exact_max or selectivity < GRAPH_MIN_SELECTIVITY:
        return Plan("exact", k_eff, k_eff, ef, allowed, selectivity, filtered)
    return Plan("graph", k_eff, fetch, min(max(ef, fetch), MAX_EF), allowed, selectivity, filtered)


def refine_with_probe(plan: Plan, local_selectivity: np.ndarray, m: int) -> tuple[np.ndarray, int]:
    """Per query: go exact (True) or walk the graph; and the ef the graph walks need."""
    safe = np.maximum(local_selectivity, 1e-9)
    needed = np.maximum(plan.fetch, np.ceil(plan.k / safe * EF_PER_SELECTIVITY))
    graph_cost = np.maximum(needed, plan.ef) * m * GRAPH_DISTANCES_PER_EF
    exact = (local_selectivity <= 0) | (needed > MAX_EF) | (plan.allowed * EXACT_COST_WEIGHT <= graph_cost)
    walks = needed[~exact]
    ef = int(min(MAX_EF, max(plan.ef, math.ceil(float(walks.max()))))) if len(walks) else plan.ef
    return exact, ef
