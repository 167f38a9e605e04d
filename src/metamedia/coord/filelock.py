"""A lock shared by every process over one data directory: `flock` on a file under `<data_dir>/run/`.

`flock` does not exclude threads of one process that share the descriptor, so callers hold their own
in-process lock first (the vector collection's writer mutex); the depth count makes it re-entrant for
the thread that holds it (repair -> snapshot).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

FILE_MODE = 0o600


class ProcessLock:
    """An exclusive lock between processes. Use under an in-process lock; re-entrant."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._depth = 0

    def acquire(self, *, blocking: bool = True) -> bool:
        """Take the lock (waiting unless `blocking=False`); True when held."""
        if self._depth:
            self._depth += 1
            return True
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._depth = fd, 1
        return True

    def release(self) -> None:
        if self._depth == 0:
            raise RuntimeError(f"{self.path} is not locked by this process")
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor releases the flock

    @property
    def held(self) -> bool:
        return self._depth > 0

    def __enter__(self) -> ProcessLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
