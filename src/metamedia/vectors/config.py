"""CollectionConfig: what a collection is, validated once at creation."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from .base import MAX_DIM, MAX_EF, MAX_EF_CONSTRUCTION, MAX_M, METRICS, PRECISIONS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Precisions whose index holds lossy codes: results are re-ranked with the full vectors.
QUANTISED = frozenset({"float16", "int8", "pq"})


@dataclass(frozen=True)
class CollectionConfig:
    """Settings of one collection. Everything but `ef_search` is fixed once the collection exists.

    - `metric`: cosine (vectors normalised on insert and query, score = cosine similarity),
      dot (inner product), l2 (Euclidean distance, not squared), manhattan (L1 distance).
    - `precision`: float32 (HNSW over raw vectors), float16 / int8 (faiss scalar quantiser),
      pq (product quantiser with `pq_m` sub-quantisers of 8 bits). Quantised precisions keep
      the full vectors in a memory-mapped file and re-rank `rerank` x k candidates with them
      (defaults 2 / 4 / 30: on 100k clustered 384-d vectors, re-ranking the 100 best PQ
      candidates gave recall@10 .87, 200 gave .986, 400 gave 1.0).
      A pq graph is linked on full-precision distances when it is first trained and on every
      `compact()`; points added later are linked on PQ distances, so compact after big loads.
    - `train_size`: int8 and pq need training; until this many points exist, search is exact.
    - `exact_max`: the planner searches exactly (no graph) when at most this many points are
      allowed by the filter.
    """

    name: str
    dim: int
    metric: str = "cosine"
    m: int = 16
    ef_construction: int = 200
    ef_search: int = 64
    precision: str = "float32"
    pq_m: int = 0
    rerank: int = 0
    train_size: int = 0
    exact_max: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise InvalidInput(
                f"collection name {self.name!r} is invalid: use 1-64 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit"
            )
        _check_int("dim", self.dim, 1, MAX_DIM)
        if self.metric not in METRICS:
            raise InvalidInput(f"metric {self.metric!r} is unknown; choose one of {', '.join(METRICS)}")
        if self.precision not in PRECISIONS:
            raise InvalidInput(
                f"precision {self.precision!r} is unknown; choose one of {', '.join(PRECISIONS)}"
            )
        if self.metric == "manhattan" and self.precision != "float32":
            raise InvalidInput(
                f"metric 'manhattan' needs precision 'float32': faiss has no L1 distance for "
                f"{self.precision!r} codes"
            )
        _check_int("m", self.m, 2, MAX_M)
        _check_int("ef_construction", self.ef_construction, 1, MAX_EF_CONSTRUCTION)
        _check_int("ef_search", self.ef_search, 1, MAX_EF)
        if self.precision == "pq":
            pq_m = self.pq_m or default_pq_m(self.dim)
            _check_int("pq_m", pq_m, 1, self.dim)
            if self.dim % pq_m:
                raise InvalidInput(f"pq_m={pq_m} must divide dim={self.dim}")
            object.__setattr__(self, "pq_m", pq_m)
        elif self.pq_m:
            raise InvalidInput("pq_m only applies to precision 'pq'")
        rerank = self.rerank or {"float32": 1, "float16": 2, "int8": 4, "pq": 30}[self.precision]
        _check_int("rerank", rerank, 1, 100)
        object.__setattr__(self, "rerank", rerank)
        train_size = self.train_size or {"int8": 1000, "pq": 4096}.get(self.precision, 1)
        _check_int("train_size", train_size, 1, 10_000_000)
        if self.precision == "pq" and train_size < 256:
            raise InvalidInput("train_size must be at least 256 for precision 'pq' (256 centroids per code)")
        object.__setattr__(self, "train_size", train_size)
        _check_int("exact_max", self.exact_max or 1, 1, 10_000_000)
        object.__setattr__(self, "exact_max", self.exact_max or 2000)

    @property
    def quantised(self) -> bool:
        """True when the index stores lossy codes and results are re-ranked."""
        return self.precision in QUANTISED

    @property
    def needs_training(self) -> bool:
        """True when the index must see `train_size` points before the graph is built."""
        return self.precision in ("int8", "pq")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form, the one stored in the catalog."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CollectionConfig:
        """Inverse of `to_dict`; unknown keys raise InvalidInput."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InvalidInput(f"unknown collection setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def with_ef_search(self, ef_search: int) -> CollectionConfig:
        """A copy with another default efSearch (the one setting that may change later)."""
        return dataclasses.replace(self, ef_search=ef_search)


def default_pq_m(dim: int) -> int:
    """Largest divisor of `dim` that gives at least 4 dimensions per sub-quantiser."""
    for pq_m in range(max(dim // 4, 1), 0, -1):
        if dim % pq_m == 0:
            return pq_m
    return 1


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{name} must be an integer in {low}..{high}, got {value!r}")
