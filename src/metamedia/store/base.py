"""The store-of-record interface every backend implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy.engine import Engine

from ..models import MediaItem


@dataclass
class SourceRow:
    """What one source file said about one item."""

    source: str
    origin: str
    data: dict[str, Any]


@dataclass
class ItemWrite:
    """One item to insert (item_id None) or update, with the source rows that back it."""

    item_id: int | None
    fields: dict[str, Any]
    sources: list[SourceRow] = field(default_factory=list)
    absorb_ids: list[int] = field(default_factory=list)  # duplicates merged into this item
    consumed_orphans: list[int] = field(default_factory=list)  # orphan rows now attached to it


@dataclass
class OrphanRow:
    """An id-only source row waiting for its title to enter the catalog."""

    row_id: int
    source: str
    origin: str
    data: dict[str, Any]


class CatalogStore(Protocol):
    """Catalog persistence: items, their source rows, the embedding cache and small metadata."""

    db: Engine
    backend: str

    def create_schema(self) -> None: ...
    def count_items(self) -> int: ...
    def item_ids(self) -> list[int]: ...
    def get_item(self, item_id: int) -> MediaItem: ...
    def get_items(self, item_ids: Sequence[int]) -> dict[int, MediaItem]: ...
    def iter_items(self, batch_size: int = 1000) -> Iterator[MediaItem]: ...
    def find_ids(self, key: str, values: Sequence[Any]) -> dict[Any, int]: ...
    def load_sources(self, item_ids: Sequence[int]) -> dict[int, list[SourceRow]]: ...
    def write_items(
        self, writes: Sequence[ItemWrite], embeddings: tuple[str, dict[str, np.ndarray]] | None = None
    ) -> list[int]: ...
    def delete_item(self, item_id: int) -> None: ...
    def find_orphans(self, key: str, values: Sequence[Any]) -> list[OrphanRow]: ...
    def replace_orphans(self, origins: Sequence[tuple[str, str]], rows: Sequence[SourceRow]) -> None: ...
    def get_embeddings(self, hashes: Sequence[str]) -> dict[str, np.ndarray]: ...
    def put_embeddings(self, model: str, vectors: dict[str, np.ndarray]) -> None: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def generation(self) -> int: ...
    def bump_generation(self) -> int: ...
    def close(self) -> None: ...
