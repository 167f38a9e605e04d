"""The narrow interfaces the middle layer is wired with (typing.Protocols).

A service takes the ports it uses in its constructor; `metamedia.engine.Engine` is the one place
that builds the concrete parts (store, vector database, embedder, caches) and hands them out.
Each port lists only what some service calls, so a reader sees at a glance what a service may
touch, and any backend that has those methods fits (the faiss and pgvector collections both
satisfy `VectorCollection`; tests/test_vectors_contract.py runs one suite over both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .store.base import CatalogStore
from .vectors.base import Hit
from .vectors.config import CollectionConfig

__all__ = [
    "CatalogStore",
    "ChangeFeed",
    "Embedder",
    "EventSink",
    "Search",
    "VectorCollection",
    "VectorDatabase",
]


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 rows (metamedia.embed.TextEmbedder)."""

    @property
    def name(self) -> str: ...

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray: ...

    def encode_query(self, text: str) -> np.ndarray: ...


@runtime_checkable
class VectorCollection(Protocol):
    """One collection of vectors with payloads: the embedded faiss `vectors.Collection` or
    `vectors_pg.PgCollection`; same ids, scores, filters and errors (the contract suite)."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> CollectionConfig: ...

    def upsert(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        payloads: Sequence[dict[str, Any]] | None = None,
    ) -> None: ...

    def delete(self, ids: Sequence[int] | np.ndarray) -> int: ...

    def get(self, point_id: int) -> tuple[np.ndarray, dict[str, Any]]: ...

    def get_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray: ...

    def payload_field(self, name: str) -> dict[int, Any]: ...

    def count(self) -> int: ...

    def ids(self) -> np.ndarray: ...

    def search(
        self,
        query: np.ndarray,
        k: int = 10,
        *,
        ef: int | None = None,
        filter: dict[str, Any] | None = None,
        threshold: float | None = None,
    ) -> list[Hit]: ...

    def explain(self, k: int = 10, *, filter: dict[str, Any] | None = None) -> dict[str, Any]: ...

    def snapshot(self) -> Any: ...


class VectorDatabase(Protocol):
    """A set of named collections (the embedded `vectors.VectorDB` or `vectors_pg.PgVectorDB`)."""

    def create_collection(self, config: CollectionConfig) -> VectorCollection: ...

    def get_collection(self, name: str) -> VectorCollection: ...

    def has_collection(self, name: str) -> bool: ...

    def list_collections(self) -> list[CollectionConfig]: ...

    def drop_collection(self, name: str) -> None: ...

    def describe(self, name: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class ChangeFeed(Protocol):
    """A generation number that grows with every committed change of what a view was built from.

    An in-memory view (the search result cache, the recommender's catalog snapshot, memory's
    strategy and episode indexes) remembers the generation it was built at and rebuilds when
    `generation()` has moved on; it never guesses from counts."""

    def generation(self) -> int: ...


class EventSink(Protocol):
    """Where services announce what happened (the HTTP event stream, metrics)."""

    def __call__(self, kind: str, data: dict[str, Any]) -> None: ...


class Search(Protocol):
    """Natural-language search as the recommender uses it to fuse a query with its ranking."""

    def __call__(self, query: str, k: int = 10, **options: Any) -> dict[str, Any]: ...
