"""A `limits` storage over one SQLite file, so several server processes share one count per key.

The moving-window algorithm stays the library's (`MovingWindowRateLimiter`); this module supplies
only its storage primitives, each one SQL transaction. Registered as the scheme
`metamedia-sqlite://<path>` (`metamedia-sqlite:///abs/path` or `metamedia-sqlite://relative/path`).

Layout: `hits(key, seq, at)` keeps, per key, the times of its most recent entries numbered by a
per-key sequence, so "is the (limit - amount)-th newest entry still inside the window?" is one
primary-key lookup however large the limit. Rows older than the newest `limit` of a key are dropped
as the key is hit (every 32 hits); a periodic sweep drops whole keys whose every entry has expired, so the file
stays as large as the set of keys active in their windows.

Durability: WAL with `synchronous=OFF`: a hit never waits for the disk. The counts are not
acknowledged user data: losing the last ones only lets a client a few requests early. A crashed or
killed server process loses nothing (the OS keeps what was written); only an OS crash or power loss
can lose or damage the file, and then startup names it and says to delete it. `NORMAL` would
fsync at every WAL checkpoint, inside some request: measured 150 vs 85 µs wall per hit on average,
with stalls of milliseconds (`bench/ratelimit_bench.py` measures the chosen setting).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from limits.storage import MovingWindowSupport, Storage

from ..coord.filelock import ProcessLock
from ..errors import BackendUnavailable

SCHEME = "metamedia-sqlite"
BUSY_TIMEOUT_MS = 5_000
WRITER_WAIT_S = 1.0  # a healthy writer holds the file for ~20 µs
SWEEP_EVERY_S = 60.0
PRUNE_EVERY = 32  # a key keeps at most limit + 32 entries between two prunes

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hits ("
    " key TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL, expires REAL NOT NULL,"
    " PRIMARY KEY (key, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS counters ("
    " key TEXT PRIMARY KEY, value INTEGER NOT NULL, expires REAL NOT NULL) WITHOUT ROWID",
)

# A key's newest entry number, and the time of its n-th newest entry (0-based; NULL when absent).
_NEWEST_AND_NTH = (
    "SELECT newest, (SELECT at FROM hits WHERE key = ?1 AND seq = newest - ?2)"
    " FROM (SELECT coalesce(max(seq), 0) AS newest FROM hits WHERE key = ?1)"
)


def sqlite_uri(path: Path) -> str:
    """The `storage_from_string` URI for a rate-limit file at `path`."""
    return f"{SCHEME}://{path}"


def _path_of(uri: str) -> Path:
    prefix = f"{SCHEME}://"
    if not uri.startswith(prefix) or len(uri) == len(prefix):
        raise BackendUnavailable(f"rate-limit storage URI must look like {prefix}<path>")
    return Path(uri[len(prefix) :])


class SQLiteStorage(Storage, MovingWindowSupport):
    """Rate-limit counts in a SQLite file shared by every process that opens the same path."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(
        self,
        uri: str | None = None,
        wrap_exceptions: bool = False,
        *,
        clock: Callable[[], float] = time.time,
        sweep_every_s: float = SWEEP_EVERY_S,
        **options: float | str | bool,
    ) -> None:
        self.path = _path_of(uri or "")
        self.clock = clock
        self.sweep_every_s = sweep_every_s
        self._next_sweep = 0.0
        self._lock = threading.Lock()  # one connection per process, used by one thread at a time
        self._pid = os.getpid()
        self._db, self._writer_fd = self._connect()
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    def _connect(self) -> tuple[sqlite3.Connection, int]:
        db = self._open(self.path)
        # Writers queue on an flock, taken again ~50 µs after it is released; SQLite's own busy
        # handler would sleep 1 ms or more at every collision between processes.
        return db, os.open(f"{self.path}.lock", os.O_CREAT | os.O_RDWR, 0o600)

    def _own(self) -> sqlite3.Connection:
        """This process's connection; a forked child opens its own (a SQLite connection and an
        flock's open file must not be shared across a fork). Call with `_lock` held."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._db, self._writer_fd = self._connect()  # the parent's are left to the parent
        return self._db

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        """Create or open the file (mode 0600, WAL) and check it is a usable database."""
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            elif path.is_file() and path.stat().st_mode & 0o077:
                path.chmod(0o600)  # counts per key are nobody else's business
            db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                # One process at a time switches a new file to WAL and creates the table: workers
                # starting together otherwise race, and SQLite refuses one with "database is locked".
                with ProcessLock(Path(f"{path}.lock")):
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA synchronous=OFF")
                    for statement in _SCHEMA:
                        db.execute(statement)
                    db.execute("BEGIN IMMEDIATE")  # proves the file takes writes, not only reads
                    db.execute("COMMIT")
                (verdict,) = db.execute("PRAGMA quick_check").fetchone()
            except BaseException:
                db.close()
                raise
        except (OSError, sqlite3.Error) as exc:
            raise BackendUnavailable(
                f"cannot use the rate-limit file {path}: {exc} (it holds only rate-limit counts:"
                " fix its permissions or delete it)"
            ) from exc
        if verdict != "ok":
            db.close()
            raise BackendUnavailable(
                f"the rate-limit file {path} is damaged ({verdict}); delete it (it holds only rate-limit counts)"
            )
        return db

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (sqlite3.Error, OSError)  # OSError: the writers' flock

    def _write(self, work: Callable[[sqlite3.Connection, float], object]) -> object:
        """Run `work(db, now)` in one write transaction; sweep expired keys when one is due."""
        with self._lock:
            db = self._own()
            self._lock_writers()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    now = self.clock()
                    result = work(db, now)
                    if now >= self._next_sweep:
                        self._next_sweep = now + self.sweep_every_s
                        self._sweep(db, now)
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:  # also after a failed COMMIT, so the next hit can begin
                        db.execute("ROLLBACK")
                    raise
                return result
            finally:
                fcntl.flock(self._writer_fd, fcntl.LOCK_UN)

    def _lock_writers(self) -> None:
        """Take the writers' flock; a writer holds it for microseconds, so polling at ~50 µs wakes
        soon after it is released. Raises TimeoutError (an OSError: 503) when a stuck process has
        held it for WRITER_WAIT_S, rather than hanging every request."""
        deadline = 0.0
        while True:
            try:
                fcntl.flock(self._writer_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                now = time.monotonic()
                if not deadline:
                    deadline = now + WRITER_WAIT_S
                elif now > deadline:
                    raise TimeoutError(f"rate-limit file {self.path} held by another process") from None
                time.sleep(0.00005)

    @staticmethod
    def _sweep(db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM hits WHERE expires <= ?", (now,))
        db.execute("DELETE FROM counters WHERE expires <= ?", (now,))

    def sweep(self) -> None:
        """Drop every expired entry and counter now (also done every `sweep_every_s` by any hit)."""
        self._write(lambda db, now: self._sweep(db, now))

    def rows(self) -> int:
        """Entries and counters stored (for tests and operators)."""
        with self._lock:
            db = self._own()
            (hits,) = db.execute("SELECT count(*) FROM hits").fetchone()
            (counters,) = db.execute("SELECT count(*) FROM counters").fetchone()
        return int(hits) + int(counters)

    # -- moving window -------------------------------------------------------------------------

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False

        def acquire(db: sqlite3.Connection, now: float) -> bool:
            # The newest entry's number, and the time of the (limit - amount)-th newest (0-based),
            # which decides, as in the library's memory storage.
            newest, deciding_at = db.execute(_NEWEST_AND_NTH, (key, limit - amount)).fetchone()
            if deciding_at is not None and deciding_at >= now - expiry:
                return False
            if amount == 1:
                db.execute(
                    "INSERT INTO hits (key, seq, at, expires) VALUES (?, ?, ?, ?)",
                    (key, newest + 1, now, now + expiry),
                )
            else:
                db.executemany(
                    "INSERT INTO hits (key, seq, at, expires) VALUES (?, ?, ?, ?)",
                    [(key, newest + i, now, now + expiry) for i in range(1, amount + 1)],
                )
            if (newest + amount) // PRUNE_EVERY != newest // PRUNE_EVERY:
                # Entries beyond the newest `limit` are never consulted again (dropped in batches).
                db.execute("DELETE FROM hits WHERE key = ? AND seq <= ?", (key, newest + amount - limit))
            return True

        return bool(self._write(acquire))

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = self.clock()
        cutoff = now - expiry
        with self._lock:
            db = self._own()
            # A window never holds more than `limit` entries (acquire_entry refuses first), so when the
            # limit-th newest is inside it, the window is full and that entry is its oldest: one
            # lookup on the refusal path, however large the limit.
            newest, limit_th_at = db.execute(_NEWEST_AND_NTH, (key, limit - 1)).fetchone()
            if limit_th_at is not None and limit_th_at >= cutoff:
                return float(limit_th_at), limit
            count, oldest = db.execute(
                "SELECT count(*), min(at) FROM hits WHERE key = ? AND seq > ? AND at >= ?",
                (key, newest - limit, cutoff),
            ).fetchone()
        if not count:
            return now, 0
        return float(oldest), int(count)

    # -- fixed-window counters (the base interface; the moving window does not use them) --------

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        def increment(db: sqlite3.Connection, now: float) -> int:
            db.execute("DELETE FROM counters WHERE key = ? AND expires <= ?", (key, now))
            db.execute(
                "INSERT INTO counters (key, value, expires) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = value + excluded.value",
                (key, amount, now + expiry),
            )
            (value,) = db.execute("SELECT value FROM counters WHERE key = ?", (key,)).fetchone()
            return int(value)

        return int(self._write(increment))  # type: ignore[call-overload]

    def get(self, key: str) -> int:
        with self._lock:
            row = (
                self._own()
                .execute("SELECT value FROM counters WHERE key = ? AND expires > ?", (key, self.clock()))
                .fetchone()
            )
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        now = self.clock()
        with self._lock:
            row = (
                self._own()
                .execute("SELECT expires FROM counters WHERE key = ? AND expires > ?", (key, now))
                .fetchone()
            )
        return float(row[0]) if row else now

    def clear(self, key: str) -> None:
        def clear_key(db: sqlite3.Connection, _now: float) -> None:
            db.execute("DELETE FROM hits WHERE key = ?", (key,))
            db.execute("DELETE FROM counters WHERE key = ?", (key,))

        self._write(clear_key)

    def check(self) -> bool:
        with self._lock:
            return bool(self._own().execute("SELECT 1").fetchone())

    def reset(self) -> int | None:
        def reset_all(db: sqlite3.Connection, _now: float) -> int:
            (keys,) = db.execute(
                "SELECT count(*) FROM (SELECT key FROM hits UNION SELECT key FROM counters)"
            ).fetchone()
            db.execute("DELETE FROM hits")
            db.execute("DELETE FROM counters")
            return int(keys)

        return int(self._write(reset_all))  # type: ignore[call-overload]

    def close(self) -> None:
        with self._lock:
            self._db.close()
            os.close(self._writer_fd)
