"""VectorDB: the catalog of collections over one SQL store of record and one data folder."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ..errors import CollectionNotFound
from .backup import read_backup_manifest, restore_collection, write_backup
from .collection import Collection
from .config import CollectionConfig
from .opening import open_state
from .state import CollectionState
from .store import PointStore
from .sync import SharedDirectory, new_token, write_lineage

logger = logging.getLogger("metamedia.vectors")


class VectorDB:
    """Collections whose points live in SQL tables (the store of record) and whose HNSW indexes,
    snapshots and full-vector files live under `data_dir/vectors/<name>/`.

    Collections are opened lazily: the first `get_collection` loads the snapshot and replays the
    writes committed after it (or rebuilds from the store when the snapshot is missing/corrupt).
    Several processes may open one data folder: each sees the others' writes at its next read
    (see `sync`).
    """

    def __init__(self, sql_engine: Engine, data_dir: Path) -> None:
        self.store = PointStore(sql_engine)
        self.root = Path(data_dir) / "vectors"
        self.root.mkdir(parents=True, exist_ok=True)
        self.shared = SharedDirectory(data_dir)
        self._open: dict[str, Collection] = {}
        self._lock = threading.RLock()

    def directory(self, name: str) -> Path:
        return self.root / name

    def create_collection(self, config: CollectionConfig) -> Collection:
        """Create an empty collection; Conflict if the name is taken."""
        with self._lock, self.shared.lock(config.name):
            self.store.add_collection(config)
            directory = self.directory(config.name)
            if directory.exists():  # left over from a collection dropped while the process died
                shutil.rmtree(directory)
            directory.mkdir(parents=True)
            write_lineage(directory, new_token(), 0)
            state = CollectionState.empty(config, directory, 1)
            collection = Collection(config, self.store, directory, state, self.shared)
            self._open[config.name] = collection
            self.shared.beacon.bump()
            return collection

    def get_collection(self, name: str) -> Collection:
        """The collection named `name`; CollectionNotFound if there is none."""
        with self._lock:
            collection = self._open.get(name)
            if collection is not None:
                return collection
            for config, _ in self.store.catalog():
                if config.name == name:
                    directory = self.directory(name)
                    with self.shared.lock(name):  # no other process writes a snapshot meanwhile
                        version = self.store.version(name)
                        state, snapshot_version = open_state(config, self.store, directory, version)
                        collection = Collection(
                            config, self.store, directory, state, self.shared,
                            snapshot_version=snapshot_version,
                        )  # fmt: skip
                    self._open[name] = collection
                    return collection
        raise CollectionNotFound(f"collection {name!r} does not exist", {"collection": name})

    def has_collection(self, name: str) -> bool:
        return any(config.name == name for config in self.list_collections())

    def list_collections(self) -> list[CollectionConfig]:
        """Configs of every collection, by name."""
        with self._lock:
            return [self._open[c.name].config if c.name in self._open else c for c, _ in self.store.catalog()]

    def drop_collection(self, name: str) -> None:
        """Delete a collection, its rows and its files; CollectionNotFound if absent."""
        with self._lock:
            if not self.has_collection(name):
                raise CollectionNotFound(f"collection {name!r} does not exist", {"collection": name})
            self._open.pop(name, None)
            with self.shared.lock(name):
                self.store.drop_collection(name)
                shutil.rmtree(self.directory(name), ignore_errors=True)
            self.shared.beacon.bump()

    def describe(self, name: str) -> dict[str, Any]:
        """Configuration and statistics of one collection."""
        return self.get_collection(name).describe()

    def snapshot_all(self) -> dict[str, Path]:
        """Snapshot every collection; returns the snapshot folder of each."""
        return {
            config.name: self.get_collection(config.name).snapshot() for config in self.list_collections()
        }

    def verify(self, name: str) -> dict[str, Any]:
        """Compare the index with the store (see Collection.verify)."""
        return self.get_collection(name).verify()

    def repair(self, name: str) -> dict[str, Any]:
        """Rebuild the index from the store and snapshot it."""
        return self.get_collection(name).repair()

    def compact(self, name: str) -> dict[str, Any]:
        """Rebuild the graph without tombstones (see Collection.compact)."""
        return self.get_collection(name).compact()

    def backup(self, dest_dir: Path) -> dict[str, Any]:
        """Write every collection (store rows + snapshot, sha256-checksummed) into `dest_dir`."""
        with self._lock:
            collections = [self.get_collection(c.name) for c in self.list_collections()]
            return write_backup(Path(dest_dir), self.store, collections)

    def restore(self, src_dir: Path) -> dict[str, Any]:
        """Replace the collections found in a backup, after verifying every checksum.

        Collections not in the backup are left alone. InvalidInput if any file does not match.
        """
        with self._lock:
            manifest = read_backup_manifest(Path(src_dir))
            restored = []
            for entry in manifest["collections"]:
                name = entry["config"]["name"]
                self._open.pop(name, None)
                with self.shared.lock(name):
                    restore_collection(Path(src_dir), entry, self.store, self.directory(name))
                    write_lineage(self.directory(name), new_token(), 0)
                restored.append(name)
            self.shared.beacon.bump()
            return {"restored": restored}

    def close(self, *, snapshot: bool = True) -> None:
        """Snapshot collections with unsaved writes, then forget them."""
        with self._lock:
            for collection in self._open.values():
                try:
                    collection.close(snapshot=snapshot)
                except Exception:
                    logger.exception("collection %r: snapshot on close failed", collection.name)
            self._open.clear()

    def __enter__(self) -> VectorDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
