"""Snapshots, compaction, verification and repair (opening is in `opening`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .opening import next_generation
from .snapshot import (
    SnapshotError,
    current_snapshot,
    read_manifest,
    verify_snapshot,
    write_snapshot,
)
from .state import CollectionState, build_state
from .sync import CollectionSync, read_lineage, release_vectors, write_lineage

logger = logging.getLogger("metamedia.vectors")

# Largest relative error ||index - stored|| / ||stored|| verify accepts per precision (a wrong
# vector is typically off by ~1.0; int8 clips points outside its trained range).
RECONSTRUCT_TOLERANCE = {"float32": 0.0, "float16": 1e-3, "int8": 0.2, "pq": 0.75}


def _snapshot_problem(directory: Path) -> str | None:
    """Why the current snapshot fails its full checksums (a reopen checks only stamps), or None."""
    snapshot = current_snapshot(directory)
    if snapshot is None:
        return None
    try:
        verify_snapshot(directory, snapshot, read_manifest(snapshot), full=True)
    except SnapshotError as exc:
        return str(exc)
    return None


class CollectionMaintenance(CollectionSync):
    """Maintenance half of `Collection` (kept apart to keep both modules small); the attributes it
    uses are declared by `CollectionSync`."""

    @contextmanager
    def writes_paused(self) -> Iterator[None]:
        """Hold off writers of every process (searches continue), e.g. while a backup copies files."""
        with self._writer, self._xlock:
            self._catch_up_locked()
            yield

    @property
    def dirty(self) -> bool:
        """True when writes happened since the last snapshot."""
        return self._state.version != self._snapshot_version

    def snapshot(self) -> Path:
        """Write the in-memory state to disk atomically (checksummed); returns the snapshot folder."""
        with self._writer, self._xlock:
            # Never older than what another process purged tombstones through (its snapshot is newer).
            self._catch_up_locked()
            existing = current_snapshot(self.directory)
            if existing is not None and not self.dirty:
                return existing
            path = write_snapshot(self.directory, self._config, self._state)
            self._snapshot_version = self._state.version
            return path

    def compact(self) -> dict[str, Any]:
        """Rebuild the graph without tombstones (int8/pq retrain on all data), then swap it in.

        Searches keep running on the old graph during the rebuild; writes wait for it.
        """
        with self._writer, self._xlock:
            self._catch_up_locked()
            old = self._state
            with self._rw.read():
                labels = old.alive_labels()
                ids = old.label_ids.view()[labels].copy()
                payloads = [old.columns.payload(int(label)) for label in labels]
                vectors = old.index.full(labels)
            generation = next_generation(self.directory, old.generation)
            new = CollectionState.empty(self._config, self.directory, generation, old.version)
            new.apply_upsert(ids, vectors, payloads)
            with self._rw.write():
                self._state = new
            release_vectors(old)
            self._snapshot_version = -1
            self.snapshot()
            # The mark first: a process replaying rows after it reloads instead of missing a delete.
            token, _ = read_lineage(self.directory)
            write_lineage(self.directory, token, new.version)
            purged = self._store.purge_deleted(self._config.name, new.version)
            self._bump_after_write()
        return {
            "collection": self._config.name,
            "count": new.n_alive,
            "removed_labels": old.size - new.size,
            "purged_tombstone_rows": purged,
            "generation": generation,
        }

    def compact_in_background(self) -> Future[dict[str, Any]]:
        """Start `compact()` on a daemon thread; the future holds its statistics (or its error)."""
        future: Future[dict[str, Any]] = Future()

        def run() -> None:
            try:
                future.set_result(self.compact())
            except BaseException as exc:  # handed to whoever waits on the future
                future.set_exception(exc)

        threading.Thread(target=run, name=f"compact-{self._config.name}", daemon=True).start()
        return future

    def _rebuild_locked(self) -> None:
        """Replace the in-memory state with one rebuilt from the store (caller holds the writer lock)."""
        name, dim = self._config.name, self._config.dim
        version = self._store.version(name)
        generation = next_generation(self.directory, self._state.generation)
        state = build_state(
            self._config, self.directory, generation, self._store.rows(name, dim, alive_only=True), version
        )
        with self._rw.write():
            old, self._state = self._state, state
        release_vectors(old)
        self._snapshot_version = -1

    def repair(self) -> dict[str, Any]:
        """Rebuild the index from the store of record and snapshot it; returns verify() after."""
        with self._writer, self._xlock:
            self._catch_up_locked()
            self._rebuild_locked()
            self.snapshot()
            return self.verify()

    def verify(self, sample: int = 64) -> dict[str, Any]:
        """Compare memory with the store: counts, id sets, and a sample of vectors and payloads."""
        name, config = self._config.name, self._config
        with self._writer:
            self._catch_up_locked()
            state = self._state
            store_version = self._store.version(name)
            store_ids = self._store.ids(name)
            index_ids = state.sorted_ids()
            missing = np.setdiff1d(store_ids, index_ids)
            extra = np.setdiff1d(index_ids, store_ids)
            common = np.intersect1d(store_ids, index_ids)
            rng = np.random.default_rng(0)
            chosen = rng.choice(common, min(sample, len(common)), replace=False) if len(common) else common
            stored = self._store.fetch(name, chosen.tolist(), config.dim)
            vector_mismatch, payload_mismatch, index_mismatch = [], [], []
            tolerance = RECONSTRUCT_TOLERANCE[config.precision]
            for point_id in chosen.tolist():
                vector, payload = stored[point_id]
                label = np.array([state.id_to_label[point_id]])
                if not np.array_equal(state.index.full(label)[0], vector):
                    vector_mismatch.append(point_id)
                decoded = state.index.reconstruct(label)[0]
                error = float(np.linalg.norm(decoded - vector) / max(float(np.linalg.norm(vector)), 1e-12))
                if error > tolerance + 1e-6:
                    index_mismatch.append(point_id)
                if state.columns.payload(int(label[0])) != payload:
                    payload_mismatch.append(point_id)
            graph_ok = not state.index.graph_ready or int(state.index.index.ntotal) == state.size
            # Only the snapshot this state was loaded from or saved to (a rebuilt, unsaved state
            # replaces the snapshot on its next save).
            snapshot_problem = _snapshot_problem(self.directory) if self._snapshot_version >= 0 else None
            ok = snapshot_problem is None and not (
                len(missing) or len(extra) or vector_mismatch or payload_mismatch or index_mismatch
            )
            ok = ok and graph_ok and store_version == state.version
        return {
            "collection": name,
            "ok": bool(ok),
            "store_count": len(store_ids),
            "index_count": state.n_alive,
            "store_version": store_version,
            "index_version": state.version,
            "missing_ids": missing[:100].tolist(),
            "missing": len(missing),
            "extra_ids": extra[:100].tolist(),
            "extra": len(extra),
            "sampled": len(chosen),
            "vector_mismatches": vector_mismatch,
            "index_mismatches": index_mismatch,
            "payload_mismatches": payload_mismatch,
            "graph_consistent": graph_ok,
            "snapshot_problem": snapshot_problem,
        }

    def describe(self) -> dict[str, Any]:
        """Configuration and statistics (counts, tombstones, versions, bytes per vector)."""
        self._fresh()
        with self._rw.read():
            state = self._state
            snapshot = current_snapshot(self.directory)
            return {
                "name": self._config.name,
                "config": self._config.to_dict(),
                "count": state.n_alive,
                "labels": state.size,
                "tombstones": state.size - state.n_alive,
                "version": state.version,
                "snapshot_version": self._snapshot_version if self._snapshot_version >= 0 else None,
                "snapshot": snapshot.name if snapshot else None,
                "generation": state.generation,
                "graph_ready": state.index.graph_ready,
                "bytes_per_vector": state.index.bytes_per_vector(),
                "payload_fields": state.columns.field_names(),
            }

    def close(self, *, snapshot: bool = True) -> None:
        """Snapshot unsaved writes (unless `snapshot=False`)."""
        if snapshot and self.dirty and self._state.size:
            self.snapshot()
