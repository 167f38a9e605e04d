"""The change beacon: a tiny shared counter file that says "something was committed" to every process.

`<data_dir>/run/changes` holds a magic tag and one 64-bit counter. A process bumps it after each
committed write to the catalog or a vector collection; every process maps the file and compares the
counter with the value it last acted on before it answers a request (one aligned 8-byte load from a
shared page: about 100 ns, no system call). When it moved, the process catches up (its vector
collections replay the newer store rows, caches holding catalog data are dropped).

Bumps are serialised by an exclusive `flock` on the file and read-increment-written under it, so
concurrent writers never lose a change; readers only compare for inequality, so a counter that was
reset (a corrupt or deleted file is recreated, seeded from the clock) still reads as "changed".
The file is repaired in place; if it was deleted and recreated, every reader notices the new file
within `RECHECK_S` (it re-stats the path at most that often) and remaps it.

The beacon is per machine: it lives in the data directory. With PostgreSQL as the store of record and
servers on several machines, each machine's processes see each other's writes at once; another
machine's writes are seen through the store's generation numbers (the result cache with `redis_url`,
the item cache), not through this file.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import threading
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("metamedia.coord")

MAGIC = b"MMCHNG01"
SIZE = 16  # magic (8 bytes) + little-endian uint64 counter at offset 8
RECHECK_S = 1.0  # how often a reader re-stats the path to notice a recreated file
FILE_MODE = 0o600


def beacon_path(data_dir: Path | str) -> Path:
    """Where the beacon of a data directory lives."""
    return Path(data_dir) / "run" / "changes"


class ChangeBeacon:
    """A shared change counter over one file; `value()` is cheap enough for every request."""

    def __init__(self, path: Path | str, *, recheck_s: float = RECHECK_S) -> None:
        self.path = Path(path)
        self.recheck_s = recheck_s  # how often `value()` re-stats the path (a recreated file is remapped)
        self._lock = threading.Lock()
        self._counter: np.ndarray | None = None  # a uint64 view of the mapping (index 1: the counter)
        self._map: mmap.mmap | None = None
        self._inode: tuple[int, int] | None = None
        self._checked_at = 0.0
        self._fallback = 0  # used when the file cannot be created (read-only data dir)
        self.available = True
        self._open()

    # ---- reading ------------------------------------------------------------------------

    def value(self) -> int:
        """The current counter. Differs from an earlier reading whenever a bump happened since."""
        counter = self._counter
        if counter is None or time.monotonic() - self._checked_at > self.recheck_s:
            return self._recheck()
        return int(counter[1])

    def _recheck(self) -> int:
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                stat = os.stat(self.path)
                current = (stat.st_dev, stat.st_ino)
            except OSError:
                current = None
            if current is None or current != self._inode or self._counter is None:
                self._open_locked()
            counter = self._counter
            return int(counter[1]) if counter is not None else self._fallback

    # ---- writing ------------------------------------------------------------------------

    def bump(self) -> int:
        """Record one committed change; returns the new counter value."""
        try:
            fd = self._open_fd()
        except OSError as exc:
            with self._lock:
                self._fallback += 1
                if self.available:
                    log.warning(
                        "change beacon %s unavailable (%s): other processes will not see writes",
                        self.path,
                        exc,
                    )
                self.available = False
                return self._fallback
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = _valid_counter(os.pread(fd, SIZE, 0))
            new = (current + 1) if current is not None else time.time_ns()
            if current is None:
                os.ftruncate(fd, SIZE)
            os.pwrite(fd, MAGIC + int(new & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little"), 0)
            stat = os.fstat(fd)
        finally:
            os.close(fd)  # also releases the lock
        if (stat.st_dev, stat.st_ino) != self._inode:
            with self._lock:
                self._open_locked()
        return int(new)

    # ---- the file -----------------------------------------------------------------------

    def _open_fd(self) -> int:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)

    def _open(self) -> None:
        with self._lock:
            self._open_locked()

    def _open_locked(self) -> None:
        """Map the file, creating or repairing it first (caller holds `_lock`)."""
        self._checked_at = time.monotonic()
        try:
            fd = self._open_fd()
        except OSError as exc:
            if self.available:
                log.warning(
                    "change beacon %s unavailable (%s): other processes will not see writes", self.path, exc
                )
            self.available = False
            self._counter, self._map, self._inode = None, None, None
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _valid_counter(os.pread(fd, SIZE, 0)) is None:
                os.ftruncate(fd, SIZE)
                os.pwrite(fd, MAGIC + time.time_ns().to_bytes(8, "little"), 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            mapping = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ)
            stat = os.fstat(fd)
        finally:
            os.close(fd)
        # An old mapping is let go, not closed: a reader may still hold its view (GC unmaps it).
        self._map = mapping
        self._counter = np.frombuffer(mapping, dtype="<u8", count=2)
        self._inode = (stat.st_dev, stat.st_ino)
        self.available = True


def _valid_counter(header: bytes) -> int | None:
    """The counter of a well-formed header, else None (missing, short or foreign file)."""
    if len(header) != SIZE or header[:8] != MAGIC:
        return None
    return int.from_bytes(header[8:], "little")
