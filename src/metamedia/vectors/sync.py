"""Freshness across processes: several processes over one data directory see each other's writes.

Every committed write bumps the data directory's change beacon (`coord.beacon`); every read first
compares the beacon with the value the collection last caught up at (~100 ns) and, when it moved,
replays the store rows newer than its in-memory version (`catch_up`). Writes take a lock shared by
the processes (`flock` on `<data_dir>/run/vectors-<name>.lock`) around catch-up + commit, so two
processes never race for the collection's optimistic version; snapshots, compaction and loading a
snapshot take it too, so one process never reads a snapshot another is writing or removing.

Another process may have rebuilt the collection under us: a compaction purges tombstone rows (we
could miss a delete replaying the rows after it), a restore or a drop + create replaces the rows.
The collection folder's LINEAGE file records it (a token per incarnation, the version tombstones
were purged through; written before the purge commits); a catch-up that finds either beyond what
it knows reloads the collection from the newest snapshot and the store instead of replaying.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from ..coord.beacon import ChangeBeacon, beacon_path
from ..coord.filelock import ProcessLock
from ..fsutil import fsync_path
from .config import CollectionConfig
from .fullvectors import MappedVectors
from .locks import ReadWriteLock
from .opening import next_generation, open_state
from .snapshot import write_atomic
from .state import CollectionState, vectors_path
from .store import PointStore

logger = logging.getLogger("metamedia.vectors")

LINEAGE = "LINEAGE"


class SharedDirectory:
    """What the collections of one data directory share with other processes: the beacon and locks."""

    def __init__(self, data_dir: Path | str) -> None:
        self.run = Path(data_dir) / "run"
        self.beacon = ChangeBeacon(beacon_path(data_dir))

    def lock(self, name: str) -> ProcessLock:
        """The cross-process write lock of collection `name`."""
        return ProcessLock(self.run / f"vectors-{name}.lock")


def read_lineage(directory: Path) -> tuple[str | None, int]:
    """(incarnation token, version tombstones were purged through); (None, 0) when unrecorded."""
    try:
        data = json.loads((directory / LINEAGE).read_text())
        return (str(data["token"]) if data.get("token") else None), int(data.get("purged_through", 0))
    except (OSError, ValueError, TypeError, KeyError):
        return None, 0


def write_lineage(directory: Path, token: str | None, purged_through: int) -> None:
    """Record the collection's incarnation and purge mark (atomically; caller holds the write lock)."""
    directory.mkdir(parents=True, exist_ok=True)
    data = {"token": token, "purged_through": int(purged_through)}
    write_atomic(directory / LINEAGE, json.dumps(data).encode())


def release_vectors(state: CollectionState) -> None:
    """A replaced state no longer claims its full-vector file (readers keep their mapping)."""
    if state.index.vectors is not None:
        state.index.vectors.release()


def new_token() -> str:
    return uuid.uuid4().hex


class CollectionSync:
    """Cross-process half of `Collection`: catch-up on reads, the shared lock on writes."""

    _config: CollectionConfig
    _store: PointStore
    directory: Path
    _state: CollectionState
    _rw: ReadWriteLock
    _writer: threading.RLock
    _snapshot_version: int
    _beacon: ChangeBeacon
    _xlock: ProcessLock
    _seen: int
    _lineage: str | None
    _owns_vectors: bool

    def _init_sync(self, shared: SharedDirectory, *, owns_vectors: bool) -> None:
        self._beacon = shared.beacon
        self._xlock = shared.lock(self._config.name)
        self._seen = self._beacon.value()
        self._lineage = read_lineage(self.directory)[0]
        self._owns_vectors = owns_vectors

    def _fresh(self) -> None:
        """Catch up if the beacon moved (the per-read check; never waits for a writer)."""
        if self._beacon.value() != self._seen:
            try:
                self.catch_up(wait=False)
            except SQLAlchemyError as exc:  # the store hiccuped: answer from memory, retry next read
                logger.warning(
                    "collection %r: catching up failed (%s); answering from memory", self._config.name, exc
                )

    def catch_up(self, *, wait: bool = True) -> bool:
        """Apply what other processes committed since our version; True if the state changed.

        With `wait=False` (reads) it returns at once when a writer of this process holds the
        collection: that writer catches up itself, and the next read tries again.
        """
        seen = self._beacon.value()
        if not self._writer.acquire(blocking=wait):
            return False
        try:
            changed = self._catch_up_locked()
            self._seen = seen
            return changed
        finally:
            self._writer.release()

    def _catch_up_locked(self) -> bool:
        """Replay newer store rows, or reload when another process rebuilt or purged (holds `_writer`)."""
        state = self._state
        name, dim = self._config.name, self._config.dim
        # Read the rows first, the lineage after: a purge records its mark before it commits, so a
        # purge these rows missed is seen in the mark.
        batches = list(self._store.rows(name, dim, since_version=state.version))
        token, purged_through = read_lineage(self.directory)
        if token != self._lineage or purged_through > state.version:
            self._reload_locked()
            return True
        if not any(len(rows.ids) for rows in batches):
            return False
        if self._config.quantised and any((~rows.deleted).any() for rows in batches):
            self._own_vectors_locked()
        try:
            with self._rw.write():
                for rows in batches:
                    state.apply_rows(rows)
        except Exception:
            logger.exception("collection %r: replaying rows of other processes failed; reloading", name)
            self._reload_locked()
        return True

    def _write_prepare_locked(self) -> None:
        """Before a commit (holds `_writer` and `_xlock`): memory equals the store, vectors are ours."""
        self._catch_up_locked()
        if self._store.version(self._config.name) != self._state.version:
            logger.warning(
                "collection %r: memory behind the store after catch-up; reloading", self._config.name
            )
            self._reload_locked()
        if self._config.quantised:
            self._own_vectors_locked()

    def _bump_after_write(self) -> None:
        """After a commit applied to memory, under `_xlock`: every change up to it is ours."""
        self._seen = self._beacon.bump()

    def _reload_locked(self) -> None:
        """Replace memory with the newest snapshot + newer rows (another process rebuilt/purged)."""
        with self._xlock:
            name = self._config.name
            config = next((c for c, _ in self._store.catalog() if c.name == name), self._config)
            state, snapshot_version = open_state(
                config, self._store, self.directory, self._store.version(name)
            )
            with self._rw.write():
                old, self._state = self._state, state
                self._config = config
            release_vectors(old)
            self._snapshot_version = snapshot_version
            self._lineage = read_lineage(self.directory)[0]
            self._owns_vectors = snapshot_version < 0  # a rebuilt state wrote a generation of its own
        logger.info("collection %r reloaded: another process rebuilt or compacted it", name)

    def _own_vectors_locked(self) -> None:
        """Give a quantised state loaded from a shared snapshot a full-vector file of its own.

        Processes that loaded one snapshot map one `vectors-<generation>.f32`; each appends its
        own labels, so the first append copies the rows to a new generation, under `_xlock` (the
        generation number is picked by looking at the folder).
        """
        if self._owns_vectors or not self._config.quantised:
            return
        with self._xlock:
            state = self._state
            old = state.index.vectors
            if old is None:
                self._owns_vectors = True
                return
            generation = next_generation(self.directory, state.generation)
            path = vectors_path(self.directory, generation)
            old.flush()
            with open(old.path, "rb") as source, open(path, "wb") as target:
                shutil.copyfileobj(source, target, 1 << 22)
            fsync_path(path)
            forked = MappedVectors(path, self._config.dim, old.count)
            with self._rw.write():
                state.index.vectors = forked
                state.generation = generation
            old.release()  # readers keep their mapping; the shared file is no longer claimed here
            self._owns_vectors = True
