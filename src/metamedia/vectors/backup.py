"""Backups: store rows (backend-neutral npz + JSON lines) and snapshots, every file sha256-checksummed.

    <dest>/manifest.json
    <dest>/<collection>/points.npz          ids, versions, vectors of the live rows
    <dest>/<collection>/payloads.jsonl      one payload per row, same order
    <dest>/<collection>/snapshots/<snap>/   the snapshot files
    <dest>/<collection>/vectors-<g>.f32     full vectors (quantised precisions)

Restore verifies every checksum before it replaces anything.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput
from ..fsutil import fsync_path
from .collection import Collection
from .config import CollectionConfig
from .fullvectors import file_sha256
from .snapshot import SnapshotError, read_manifest, verify_snapshot, write_atomic
from .store import PointRows, PointStore

FORMAT = 1
_ROW_BATCH = 5000


def write_backup(dest: Path, store: PointStore, collections: Sequence[Collection]) -> dict[str, Any]:
    """Back up `collections` into the empty (or new) folder `dest`; returns the manifest."""
    if dest.exists() and any(dest.iterdir()):
        raise InvalidInput(f"backup folder {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    entries = []
    for collection in collections:
        with collection.writes_paused():
            entries.append(_backup_collection(dest, store, collection))
    manifest = {"format": FORMAT, "created": datetime.now(UTC).isoformat(), "collections": entries}
    write_atomic(dest / "manifest.json", json.dumps(manifest, indent=1).encode())
    return manifest


def _backup_collection(dest: Path, store: PointStore, collection: Collection) -> dict[str, Any]:
    name, dim = collection.name, collection.config.dim
    folder = dest / name
    snapshot = collection.snapshot()
    snap_manifest = read_manifest(snapshot)
    try:  # a reopen checks only stamps: a backup checks every byte before copying it
        verify_snapshot(collection.directory, snapshot, snap_manifest, full=True)
    except SnapshotError as exc:
        raise SnapshotError(f"collection {name!r}: {exc}; run repair before backing up") from exc
    target = folder / "snapshots" / snapshot.name
    shutil.copytree(snapshot, target)
    if "vectors" in snap_manifest:
        info = snap_manifest["vectors"]
        _copy_prefix(collection.directory / info["file"], folder / info["file"], info["rows"] * dim * 4)
    ids, versions, vectors, payloads = [], [], [], []
    for rows in store.rows(name, dim, alive_only=True):
        ids.append(rows.ids)
        versions.append(rows.versions)
        vectors.append(rows.vectors)
        payloads.extend(rows.payloads)
    np.savez(
        folder / "points.npz",
        ids=np.concatenate(ids) if ids else np.zeros(0, np.int64),
        versions=np.concatenate(versions) if versions else np.zeros(0, np.int64),
        vectors=np.vstack(vectors) if vectors else np.zeros((0, dim), np.float32),
    )
    with open(folder / "payloads.jsonl", "w", encoding="utf-8") as handle:
        for payload in payloads:
            handle.write(json.dumps(payload, separators=(",", ":")) + "\n")
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        fsync_path(path)
        files[path.relative_to(dest).as_posix()] = file_sha256(path)
    return {
        "config": collection.config.to_dict(),
        "version": store.version(name),
        "count": len(payloads),
        "snapshot": snapshot.name,
        "files": files,
    }


def _copy_prefix(source: Path, target: Path, length: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(target, "wb") as dst:
        remaining = length
        while remaining > 0:
            chunk = src.read(min(remaining, 1 << 22))
            if not chunk:
                break
            dst.write(chunk)
            remaining -= len(chunk)


def read_backup_manifest(src: Path) -> dict[str, Any]:
    """The backup's manifest after checking every file's sha256; InvalidInput on any mismatch."""
    try:
        manifest: dict[str, Any] = json.loads((src / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{src} is not a readable vector backup: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise InvalidInput(f"{src}: unknown backup format {manifest.get('format')!r}")
    bad = []
    for entry in manifest["collections"]:
        CollectionConfig.from_dict(entry["config"])
        for relative, digest in entry["files"].items():
            path = src / relative
            if not path.is_file() or file_sha256(path) != digest:
                bad.append(relative)
    if bad:
        raise InvalidInput(
            f"backup {src} failed verification: {len(bad)} file(s) missing or corrupt", {"files": bad}
        )
    return manifest


def restore_collection(src: Path, entry: dict[str, Any], store: PointStore, directory: Path) -> None:
    """Replace one collection's rows and files with those of a verified backup entry."""
    config = CollectionConfig.from_dict(entry["config"])
    folder = src / config.name
    store.replace_collection(config, int(entry["version"]), _backup_rows(folder, config.dim))
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    shutil.copytree(folder / "snapshots", directory / "snapshots")
    for vectors_file in folder.glob("vectors-*.f32"):
        shutil.copyfile(vectors_file, directory / vectors_file.name)
    write_atomic(directory / "CURRENT", entry["snapshot"].encode())


def _backup_rows(folder: Path, dim: int) -> Iterator[PointRows]:
    with np.load(folder / "points.npz") as data:
        ids, versions, vectors = data["ids"], data["versions"], data["vectors"]
    with open(folder / "payloads.jsonl", encoding="utf-8") as handle:
        payloads = [json.loads(line) for line in handle]
    if not (len(ids) == len(versions) == len(vectors) == len(payloads)):
        raise InvalidInput(f"{folder}: row files disagree on the number of points")
    for start in range(0, len(ids), _ROW_BATCH):
        end = start + _ROW_BATCH
        yield PointRows(
            ids[start:end],
            versions[start:end],
            np.zeros(len(ids[start:end]), dtype=bool),
            vectors[start:end].reshape(-1, dim),
            payloads[start:end],
        )
