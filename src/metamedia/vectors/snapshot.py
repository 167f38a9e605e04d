"""Snapshots of a collection's in-memory state, written atomically and verified on load.

Layout under data_dir/vectors/<name>/:
    CURRENT                    name of the live snapshot directory (replaced atomically)
    snapshots/<dir>/           index.faiss, labels.npy, alive.npy, payloads.jsonl, manifest.json
    vectors-<generation>.f32   full vectors (quantised precisions); append-only, so a snapshot
                               records its row count and the sha256 of that prefix.
A snapshot directory is fully written and fsynced under a temporary name, renamed, and only then
named in CURRENT; a crash at any point leaves the previous snapshot intact.

Integrity: the manifest records every file's full sha256 (checked by `verify_snapshot(full=True)`:
`Collection.verify`, backups and restores) and a stamp (size + sha256 of sampled blocks: the head,
the tail and evenly spread blocks), checked on every open so a reopen does not hash the whole
snapshot again. A torn, truncated or swapped file fails the stamp and the collection is rebuilt
from the store; bit rot inside a block the stamp does not cover is found by `verify`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MetamediaError
from ..fsutil import fsync_path
from .config import CollectionConfig
from .fullvectors import file_sha256, in_use, prefix_sha256, sampled_sha256
from .index import AnnIndex
from .payloads import PayloadColumns
from .state import CollectionState, vectors_path

logger = logging.getLogger("metamedia.vectors")

FORMAT = 1
SNAPSHOT_FILES = ("index.faiss", "labels.npy", "alive.npy", "payloads.jsonl")
# Written since issue 20; snapshots without them still load (columns rebuilt from payloads.jsonl).
COLUMN_FILES = ("payload_offsets.npy", "payload_columns.npz", "payload_columns.json")
# The vocabulary texts apart from payload_columns.json, parsed on first use (optional on load).
TEXTS_FILE = "payload_texts.json"


class SnapshotError(MetamediaError):
    """A snapshot is missing, incomplete or does not match its manifest."""

    status_code = 500


def write_atomic(path: Path, data: bytes) -> None:
    """Write a small file via temp file + fsync + os.replace."""
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    fsync_path(path.parent)


def write_snapshot(directory: Path, config: CollectionConfig, state: CollectionState) -> Path:
    """Write `state` as the collection's current snapshot; returns the snapshot directory."""
    snapshots = directory / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    final = snapshots / f"v{state.version}-{uuid.uuid4().hex[:8]}"
    temp = snapshots / f".tmp-{final.name}"
    temp.mkdir()
    state.index.write(temp / "index.faiss")
    np.save(temp / "labels.npy", state.label_ids.view())
    np.save(temp / "alive.npy", state.alive.view())
    offsets = np.zeros(state.size + 1, dtype=np.int64)
    with open(temp / "payloads.jsonl", "wb") as handle:
        for label in range(state.size):
            line = (json.dumps(state.columns.payload(label), separators=(",", ":")) + "\n").encode()
            handle.write(line)
            offsets[label + 1] = offsets[label] + len(line)
    # The filter columns in binary form, so a reopen loads arrays instead of re-parsing every payload.
    meta, arrays = state.columns.to_arrays()
    np.save(temp / "payload_offsets.npy", offsets)
    with open(temp / "payload_columns.npz", "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    texts = [info.pop("texts") for info in meta["fields"]]
    (temp / "payload_columns.json").write_text(json.dumps(meta, separators=(",", ":")))
    (temp / TEXTS_FILE).write_text(json.dumps(texts, separators=(",", ":")))  # JSON keeps every character
    files, stamps = {}, {}
    for name in (*SNAPSHOT_FILES, *COLUMN_FILES, TEXTS_FILE):
        fsync_path(temp / name)
        files[name] = file_sha256(temp / name)
        size = (temp / name).stat().st_size
        stamps[name] = {"size": size, "sample": sampled_sha256(temp / name, size)}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "collection": config.name,
        "config": config.to_dict(),
        "version": state.version,
        "count": state.n_alive,
        "labels": state.size,
        "generation": state.generation,
        "files": files,
        "stamps": stamps,
    }
    if state.index.vectors is not None:
        state.index.vectors.flush()
        length = state.index.vectors.count * config.dim * 4
        manifest["vectors"] = {
            "file": vectors_path(directory, state.generation).name,
            "rows": state.index.vectors.count,
            "sha256": state.index.vectors.checksum(),
            "sample": sampled_sha256(state.index.vectors.path, length),
        }
    (temp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    fsync_path(temp / "manifest.json")
    fsync_path(temp)
    os.replace(temp, final)
    fsync_path(snapshots)
    write_atomic(directory / "CURRENT", final.name.encode())
    _remove_stale(directory, keep_snapshot=final.name, keep_generation=state.generation)
    return final


def _remove_stale(directory: Path, keep_snapshot: str, keep_generation: int) -> None:
    for old in (directory / "snapshots").iterdir():
        if old.name != keep_snapshot:
            shutil.rmtree(old, ignore_errors=True)
    for old in directory.glob("vectors-*.f32"):
        # Another process (or an older state here) may still map it: left for a later snapshot.
        if old.name != vectors_path(directory, keep_generation).name and not in_use(old):
            old.unlink(missing_ok=True)


def current_snapshot(directory: Path) -> Path | None:
    """The live snapshot directory, or None."""
    try:
        name = (directory / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    path = directory / "snapshots" / name
    return path if name and path.is_dir() else None


def read_manifest(snapshot: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((snapshot / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"unreadable manifest in {snapshot}: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise SnapshotError(f"unknown snapshot format {manifest.get('format')!r}")
    return manifest


def verify_snapshot(directory: Path, snapshot: Path, manifest: dict[str, Any], full: bool = True) -> None:
    """Raise SnapshotError unless every file matches its manifest: its full sha256, or with
    `full=False` its stamp (size + sampled sha256; snapshots written before stamps get full)."""
    stamps = manifest.get("stamps") if not full else None
    for name, digest in manifest["files"].items():
        path = snapshot / name
        if stamps is not None and name in stamps:
            stamp = stamps[name]
            try:
                good = path.stat().st_size == stamp["size"] and (
                    sampled_sha256(path, stamp["size"]) == stamp["sample"]
                )
            except (OSError, ValueError):
                good = False
        else:
            good = path.is_file() and file_sha256(path) == digest
        if not good:
            raise SnapshotError(f"{path} is missing or does not match its checksum")
    if "vectors" in manifest:
        info = manifest["vectors"]
        path = directory / info["file"]
        length = info["rows"] * manifest["config"]["dim"] * 4
        try:
            if stamps is not None and "sample" in info:
                good = sampled_sha256(path, length) == info["sample"]
            else:
                good = prefix_sha256(path, length) == info["sha256"]
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"{path}: {exc}") from exc
        if not good:
            raise SnapshotError(f"{path} does not match its checksum")


def load_snapshot(directory: Path, config: CollectionConfig) -> CollectionState:
    """The state saved in the current snapshot; SnapshotError if absent, corrupt or foreign."""
    snapshot = current_snapshot(directory)
    if snapshot is None:
        raise SnapshotError("no snapshot")
    manifest = read_manifest(snapshot)
    saved = CollectionConfig.from_dict(manifest["config"])
    if saved.with_ef_search(config.ef_search) != config:
        raise SnapshotError("snapshot was written for another collection configuration")
    verify_snapshot(directory, snapshot, manifest, full=False)
    generation = int(manifest["generation"])
    try:
        index = AnnIndex.load(
            config, snapshot / "index.faiss", vectors_path(directory, generation), manifest["labels"]
        )
        label_ids = np.load(snapshot / "labels.npy")
        alive = np.load(snapshot / "alive.npy")
    except (RuntimeError, ValueError, OSError) as exc:
        raise SnapshotError(f"cannot read snapshot {snapshot}: {exc}") from exc
    state = CollectionState(index, generation, int(manifest["version"]))
    state.label_ids.extend(label_ids)
    state.alive.extend(alive)
    if all(name in manifest["files"] for name in COLUMN_FILES):
        try:
            with np.load(snapshot / "payload_columns.npz", allow_pickle=False) as arrays:
                state.columns = PayloadColumns.from_arrays(
                    json.loads((snapshot / "payload_columns.json").read_text()),
                    arrays,
                    (snapshot / "payloads.jsonl").read_bytes(),
                    np.load(snapshot / "payload_offsets.npy", allow_pickle=False),
                    (snapshot / TEXTS_FILE).read_bytes() if TEXTS_FILE in manifest["files"] else None,
                )
        except (ValueError, KeyError, OSError) as exc:
            raise SnapshotError(f"cannot read payload columns in {snapshot}: {exc}") from exc
    else:
        with open(snapshot / "payloads.jsonl", encoding="utf-8") as handle:
            state.columns.append(json.loads(line) for line in handle)
    state._id_to_label = None  # built on first use
    state.n_alive = int(np.count_nonzero(alive))
    if (
        not (len(label_ids) == len(alive) == state.columns.size == index.size)
        or state.n_alive != manifest["count"]
    ):
        raise SnapshotError(f"snapshot {snapshot} is internally inconsistent")
    return state
