"""CollectionState: everything a collection holds in memory, swapped as one object on rebuilds."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import CollectionConfig
from .index import AnnIndex
from .payloads import Growable, Payload, PayloadColumns
from .store import PointRows


def vectors_path(directory: Path, generation: int) -> Path:
    """The full-vector file of one index generation (quantised precisions)."""
    return directory / f"vectors-{generation}.f32"


@dataclass
class CollectionState:
    """Labels are append-only: an upsert tombstones the old label and appends a new one."""

    index: AnnIndex
    generation: int
    version: int = 0
    label_ids: Growable = field(default_factory=lambda: Growable(np.int64, -1))
    alive: Growable = field(default_factory=lambda: Growable(np.bool_, False))
    # None after a snapshot load: built from label_ids/alive on first use (a reader never needs it).
    _id_to_label: dict[int, int] | None = field(default_factory=dict)
    columns: PayloadColumns = field(default_factory=PayloadColumns)
    n_alive: int = 0
    _alive_bitmap: np.ndarray | None = None

    @classmethod
    def empty(
        cls, config: CollectionConfig, directory: Path, generation: int, version: int = 0
    ) -> CollectionState:
        path = vectors_path(directory, generation)
        path.unlink(missing_ok=True)
        return cls(AnnIndex.create(config, path), generation, version)

    @property
    def id_to_label(self) -> dict[int, int]:
        """Label of every live point id."""
        if self._id_to_label is None:
            labels = np.flatnonzero(self.alive.view())
            ids = self.label_ids.view()[labels].tolist()
            self._id_to_label = dict(zip(ids, labels.tolist(), strict=True))
        return self._id_to_label

    @property
    def size(self) -> int:
        """Labels in the index, deleted ones included."""
        return self.label_ids.size

    def apply_upsert(self, ids: np.ndarray, vectors: np.ndarray, payloads: Sequence[Payload]) -> None:
        """Tombstone the old labels of `ids`, append the new points (vectors already checked)."""
        if not len(ids):
            return
        self._tombstone(ids)
        start = self.size
        self.index.add(vectors)
        self.label_ids.extend(ids)
        self.alive.extend(np.ones(len(ids), dtype=bool))
        self.columns.append(payloads)
        for offset, point_id in enumerate(ids.tolist()):
            self.id_to_label[point_id] = start + offset
        self.n_alive += len(ids)
        self._alive_bitmap = None

    def apply_delete(self, ids: np.ndarray) -> int:
        """Tombstone `ids`; returns how many existed."""
        removed = self._tombstone(ids)
        self._alive_bitmap = None
        return removed

    def _tombstone(self, ids: np.ndarray) -> int:
        removed = 0
        for point_id in ids.tolist():
            label = self.id_to_label.pop(point_id, None)
            if label is not None:
                self.alive.data[label] = False
                removed += 1
        self.n_alive -= removed
        return removed

    def apply_rows(self, rows: PointRows) -> None:
        """Replay store rows (latest state of each id): deleted rows tombstone, live rows upsert."""
        if rows.deleted.any():
            self.apply_delete(rows.ids[rows.deleted])
        live = ~rows.deleted
        if live.any():
            payloads = [p for p, keep in zip(rows.payloads, live, strict=True) if keep]
            self.apply_upsert(rows.ids[live], rows.vectors[live], payloads)
        if len(rows.versions):
            self.version = max(self.version, int(rows.versions.max()))

    def alive_labels(self) -> np.ndarray:
        return np.flatnonzero(self.alive.view())

    def alive_bitmap(self) -> np.ndarray:
        """Packed little-endian bits of the alive labels (cached until the next write)."""
        if self._alive_bitmap is None:
            self._alive_bitmap = np.packbits(self.alive.view(), bitorder="little")
        return self._alive_bitmap

    def sorted_ids(self) -> np.ndarray:
        return np.sort(self.label_ids.view()[self.alive.view()])


def build_state(
    config: CollectionConfig, directory: Path, generation: int, batches: Iterator[PointRows], version: int
) -> CollectionState:
    """A fresh state (new index generation) from live store rows."""
    state = CollectionState.empty(config, directory, generation, version)
    for rows in batches:
        state.apply_rows(rows)
    state.version = version
    return state
