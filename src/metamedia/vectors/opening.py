"""Opening a collection's state: the newest snapshot plus newer store rows, or a rebuild from the store."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from .config import CollectionConfig
from .snapshot import SnapshotError, current_snapshot, load_snapshot
from .state import CollectionState, build_state
from .store import PointStore

logger = logging.getLogger("metamedia.vectors")


def next_generation(directory: Path, *in_use: int) -> int:
    """A generation number no file in `directory` uses yet."""
    found = [
        int(m.group(1))
        for p in directory.glob("vectors-*.f32")
        if (m := re.match(r"vectors-(\d+)\.f32$", p.name))
    ]
    return max([0, *found, *in_use]) + 1


def open_state(
    config: CollectionConfig, store: PointStore, directory: Path, store_version: int
) -> tuple[CollectionState, int]:
    """Load the snapshot and replay newer store rows; rebuild from the store when that fails.

    Returns the state and the version of the snapshot it came from (-1 when rebuilt).
    """
    directory.mkdir(parents=True, exist_ok=True)
    try:
        state = load_snapshot(directory, config)
        snapshot_version = state.version
        if state.version > store_version:
            raise SnapshotError(f"snapshot version {state.version} is ahead of the store ({store_version})")
        for rows in store.rows(config.name, config.dim, since_version=state.version):
            state.apply_rows(rows)
        state.version = store_version
        stored = store.count(config.name)
        if state.n_alive != stored:
            raise SnapshotError(f"{state.n_alive} points after replay, the store has {stored}")
        return state, snapshot_version
    except SnapshotError as exc:
        if current_snapshot(directory) is not None or store.count(config.name):
            logger.warning("collection %r: %s; rebuilding the index from the store", config.name, exc)
    live_rows = store.rows(config.name, config.dim, alive_only=True)
    return build_state(config, directory, next_generation(directory), live_rows, store_version), -1
