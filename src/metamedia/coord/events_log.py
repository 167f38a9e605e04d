"""One append-only, bounded log of events shared by every server process over one data directory.

With `metamedia serve --workers N` each process publishes into `<data_dir>/run/events.sqlite3`
(SQLite in WAL mode: readers never wait for the writer) and tails it for its own `/events`
subscribers. SQLite hands out the ids (AUTOINCREMENT, inside the write transaction), so every event
has one id that grows in commit order across all processes, and a reader sees a prefix of that order:
an event with a smaller id can never become visible after a larger one.

The log keeps the newest `capacity` events; `trimmed` is the largest id ever dropped, so a reader
resuming after id `n` knows that some events were lost exactly when `n < trimmed`. A new file starts
its ids at the current time in milliseconds (like the in-process bus), so ids keep growing across
restarts that clear the run folder.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .filelock import ProcessLock

FILE_NAME = "events.sqlite3"
BUSY_TIMEOUT_MS = 5000
READ_LIMIT = 10_000

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, data TEXT NOT NULL, ts REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)


@dataclass(frozen=True)
class LoggedEvent:
    """One row of the log: its global id, kind, JSON-decoded data and publication time."""

    id: int
    kind: str
    data: dict[str, Any]
    ts: float


def events_log_path(data_dir: str | os.PathLike[str]) -> Path:
    """Where the shared log of a data directory lives."""
    return Path(data_dir) / "run" / FILE_NAME


class EventLog:
    """The shared log as one process uses it (thread-safe: one connection behind a lock)."""

    def __init__(self, path: str | os.PathLike[str], capacity: int = 1000) -> None:
        if capacity < 1:
            raise InvalidInput("the event log must keep at least one event", {"capacity": capacity})
        self.path = Path(path)
        self.capacity = capacity
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created private before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        with self._lock:
            self._connect()

    def _connect(self) -> sqlite3.Connection:
        """The open connection (caller holds the lock); opened again after `close`."""
        if self._db is not None:
            return self._db
        db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # One process at a time switches a new file to WAL and creates the tables: two workers
            # starting together otherwise race, and SQLite refuses one with "database is locked".
            with ProcessLock(self.path.with_name(self.path.name + ".lock")):
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")  # a notification log: no fsync per event
                self._create(db)
        except BaseException:
            db.close()
            raise
        self._db = db
        return db

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                db.execute(statement)
            started = db.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'events'").fetchone()
            if started is None:  # a new log: ids start at the time in ms and never go back
                db.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)",
                    (int(time.time() * 1000) - 1,),
                )
                db.execute("INSERT OR IGNORE INTO events_meta (key, value) VALUES ('trimmed', 0)")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def append(self, kind: str, data: dict[str, Any], ts: float | None = None) -> LoggedEvent:
        """Add one event and drop what falls out of the window; returns it with its global id."""
        body = json.dumps(data, default=str, separators=(",", ":"))
        stamp = time.time() if ts is None else ts
        with self._lock:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
            try:
                cursor = db.execute(
                    "INSERT INTO events (kind, data, ts) VALUES (?, ?, ?)", (kind, body, stamp)
                )
                event_id = int(cursor.lastrowid or 0)
                self._trim(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return LoggedEvent(event_id, kind, json.loads(body), stamp)

    def _trim(self, db: sqlite3.Connection) -> None:
        row = db.execute(
            "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?", (self.capacity,)
        ).fetchone()
        if row is not None:
            db.execute("DELETE FROM events WHERE id <= ?", (row[0],))
            db.execute("UPDATE events_meta SET value = max(value, ?) WHERE key = 'trimmed'", (row[0],))

    def read_after(self, last_id: int, limit: int = READ_LIMIT) -> tuple[list[LoggedEvent], int]:
        """Events with an id above `last_id` in id order, and the largest id ever trimmed (one snapshot)."""
        with self._lock:
            db = self._connect()
            db.execute("BEGIN")
            try:
                rows = db.execute(
                    "SELECT id, kind, data, ts FROM events WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit)
                ).fetchall()
                trimmed = db.execute("SELECT value FROM events_meta WHERE key = 'trimmed'").fetchone()
            finally:
                db.execute("COMMIT")
        events = [LoggedEvent(int(i), str(k), json.loads(d), float(t)) for i, k, d, t in rows]
        return events, int(trimmed[0]) if trimmed else 0

    def last_id(self) -> int:
        """The newest id handed out (also when its event was trimmed since)."""
        with self._lock:
            row = self._connect().execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return int(row[0]) if row else 0

    def count(self) -> int:
        """Events kept in the log now (at most `capacity`)."""
        with self._lock:
            return int(self._connect().execute("SELECT count(*) FROM events").fetchone()[0])

    def close(self) -> None:
        """Close the connection (a later call opens it again)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
