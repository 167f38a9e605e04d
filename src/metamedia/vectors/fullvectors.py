"""Full-precision vectors by label, in a growable memory-mapped file (re-ranking for quantised indexes)."""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
from pathlib import Path

import numpy as np

_MIN_ROWS = 1024


class MappedVectors:
    """Append-only float32 rows in `path`; rows below `count` never change, so readers need no copy.

    The file stays open with a shared `flock` while mapped: `in_use` tells a process cleaning up
    old generations that another one still reads this file (several processes over one folder).
    """

    def __init__(self, path: Path, dim: int, count: int = 0) -> None:
        self.path = path
        self.dim = dim
        self.count = count
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        if os.fstat(self._fd).st_size == 0:
            os.ftruncate(self._fd, _MIN_ROWS * dim * 4)
        capacity = os.fstat(self._fd).st_size // (dim * 4)
        if capacity < count:
            raise ValueError(f"{path} holds {capacity} vectors, {count} expected")
        self._map: np.memmap = self._open(max(capacity, 1))

    def _open(self, rows: int) -> np.memmap:
        if self._fd is None:
            raise ValueError(f"{self.path} was released")
        with open(self._fd, "r+b", closefd=False) as handle:
            return np.memmap(handle, dtype=np.float32, mode="r+", shape=(rows, self.dim))

    def release(self) -> None:
        """Stop claiming the file (it may be removed now); the mapping stays readable."""
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)  # releases the shared lock

    def __del__(self) -> None:
        self.release()

    @property
    def capacity(self) -> int:
        return int(self._map.shape[0])

    def append(self, vectors: np.ndarray) -> None:
        """Write rows after the last one, growing the file by doubling when full."""
        needed = self.count + len(vectors)
        if needed > self.capacity:
            rows = max(needed, 2 * self.capacity, _MIN_ROWS)
            self._map.flush()
            if self._fd is None:
                raise ValueError(f"{self.path} was released and can no longer grow")
            os.ftruncate(self._fd, rows * self.dim * 4)
            self._map = self._open(rows)
        self._map[self.count : needed] = vectors
        self.count = needed

    def view(self) -> np.ndarray:
        """Rows 0..count-1 (a view on the mapping, not a copy)."""
        return self._map[: self.count]

    def take(self, labels: np.ndarray) -> np.ndarray:
        """A float32 copy of the rows at `labels`."""
        return np.asarray(self._map[labels], dtype=np.float32)

    def flush(self) -> None:
        """Write dirty pages and fsync the file."""
        self._map.flush()
        if self._fd is not None:
            os.fsync(self._fd)

    def checksum(self) -> str:
        """sha256 of the bytes of rows 0..count-1."""
        return prefix_sha256(self.path, self.count * self.dim * 4)


def in_use(path: Path) -> bool:
    """True while a process (this one included) maps the full-vector file at `path`."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def prefix_sha256(path: Path, length: int) -> str:
    """sha256 of the first `length` bytes of a file."""
    digest = hashlib.sha256()
    remaining = length
    with open(path, "rb") as handle:
        while remaining > 0:
            chunk = handle.read(min(remaining, 1 << 22))
            if not chunk:
                raise ValueError(f"{path} is shorter than {length} bytes")
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a whole file."""
    return prefix_sha256(path, path.stat().st_size)


SAMPLE_BLOCK = 4096
SAMPLE_BLOCKS = 64


def sampled_ranges(length: int) -> list[tuple[int, int]]:
    """(start, size) of the blocks `sampled_sha256` reads from a prefix of `length` bytes."""
    edge = 16 * SAMPLE_BLOCK
    if length <= 2 * edge + SAMPLE_BLOCKS * SAMPLE_BLOCK:
        return [(0, length)]
    starts = np.linspace(edge, length - edge - SAMPLE_BLOCK, SAMPLE_BLOCKS).astype(np.int64).tolist()
    return [(0, edge), *((start, SAMPLE_BLOCK) for start in starts), (length - edge, edge)]


def sampled_sha256(path: Path, length: int) -> str:
    """sha256 of the length, the first and last 64 KiB and 64 evenly spread 4 KiB blocks of the
    first `length` bytes of a file (the whole prefix when it is small): a cheap stamp that a torn,
    truncated or replaced file fails. ValueError when the file is shorter than `length`."""
    ranges = sampled_ranges(length)
    if len(ranges) == 1:
        return prefix_sha256(path, length)
    digest = hashlib.sha256(str(length).encode())
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        if len(mapped) < length:
            raise ValueError(f"{path} is shorter than {length} bytes")
        view = memoryview(mapped)
        try:
            for start, size in ranges:
                digest.update(view[start : start + size])
        finally:
            view.release()
    return digest.hexdigest()
