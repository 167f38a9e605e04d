"""Which shard holds an item, the layout of shards and replicas, and the merge of shard answers.

An item lives in shard `crc32(id as 8 little-endian bytes) mod S`: stable across processes,
machines and Python versions (the built-in `hash()` is not). A layout names its shards by a
version number, so a new layout (other S) can be built beside the old one under other names.
"""

from __future__ import annotations

import heapq
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InvalidInput
from ..vectors.base import Hit

MAX_SHARDS = 64
MAX_REPLICAS = 64


def shard_of(item_id: int, shards: int) -> int:
    """The shard (0..shards-1) that holds `item_id`."""
    return zlib.crc32(int(item_id).to_bytes(8, "little", signed=True)) % shards


def shard_mask(ids: np.ndarray, shard: int, shards: int) -> np.ndarray:
    """Boolean mask of the ids that belong to `shard`."""
    return np.fromiter((shard_of(int(i), shards) == shard for i in ids), dtype=bool, count=len(ids))


def shard_k(k: int) -> int:
    """How many hits each shard returns for a merged top k: k plus a margin, so that an item a
    shard's graph ranked just below its own k can still make the merged list."""
    return k + max(5, k // 4)


def merge_hits(answers: Iterable[Sequence[Hit]], k: int, higher_is_better: bool = True) -> list[Hit]:
    """The best k of the shards' hits by score (shards hold disjoint items, so no duplicates)."""
    pool = [h for answer in answers for h in answer]
    if higher_is_better:
        return heapq.nlargest(k, pool, key=lambda h: (h.score, -h.id))
    return heapq.nsmallest(k, pool, key=lambda h: (h.score, h.id))


@dataclass(frozen=True)
class Layout:
    """S shards of R replicas each, built under version `version` (new version = new deployments)."""

    version: int
    shards: int
    replicas: int

    def __post_init__(self) -> None:
        if not 1 <= self.shards <= MAX_SHARDS:
            raise InvalidInput(f"shards must be between 1 and {MAX_SHARDS}, got {self.shards}")
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise InvalidInput(f"replicas must be between 1 and {MAX_REPLICAS}, got {self.replicas}")
        if self.version < 1:
            raise InvalidInput(f"layout version must be at least 1, got {self.version}")

    def app_name(self, shard: int) -> str:
        """The Serve application (and deployment) of one shard of this layout."""
        return f"metamedia-shard-v{self.version}-{shard}-of-{self.shards}"

    @property
    def app_names(self) -> list[str]:
        return [self.app_name(i) for i in range(self.shards)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Layout:
        data = json.loads(raw)
        return cls(int(data["version"]), int(data["shards"]), int(data["replicas"]))
