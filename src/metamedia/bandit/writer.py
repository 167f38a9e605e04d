"""Decision log writes off the request path: rows queue in memory and one transaction writes them.

A recommendation request logs its bandit decision (arm, propensities, context) and then the items
the arm served. Committing each to SQLite costs milliseconds per request; here the request only
queues the row (the served items amend the queued row) and a background thread writes everything
queued every ``interval`` seconds in one transaction. Anything that reads the log (a reward
joining its decision, stats, off-policy evaluation, a backup) calls ``flush()`` first, and
``close()`` flushes before the process stops, so no decision is lost on an orderly shutdown; a
failed write keeps its rows queued for the next round.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine

from .log import decisions_table

log = logging.getLogger("metamedia.bandit")

FLUSH_INTERVAL_S = 0.05
AMENDED_COLUMNS = ("served_items", "served_detail")  # what a decision learns after it was logged
REMEMBER_WRITTEN = 10_000  # recent written ids whose served items may still be amended in a batch


class DecisionWriter:
    """Batches decision rows into one insert per ``interval`` seconds (see the module docstring)."""

    def __init__(self, engine: Engine, interval: float = FLUSH_INTERVAL_S) -> None:
        self.engine = engine
        self.interval = interval
        self._pending: dict[str, dict[str, Any]] = {}
        # written decisions whose served items came later: the column values still to update
        self._amended: dict[str, dict[str, Any]] = {}
        self._written: OrderedDict[str, None] = OrderedDict()  # ids this writer wrote, newest last
        self._lock = threading.Lock()  # guards _pending
        self._write_lock = threading.Lock()  # one flush at a time, in order
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, row: dict[str, Any]) -> None:
        """Queue one decision row (written within ``interval`` seconds)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the decision writer is closed")
            self._pending[str(row["id"])] = row
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="metamedia-bandit-log", daemon=True)
                self._thread.start()

    def amend_items(
        self, decision_id: str, served_items: Sequence[int], detail: dict[str, Any] | None = None
    ) -> bool:
        """Set the served items (and their detail) of a decision this writer queued or recently
        wrote (the next batch writes them); False when it knows no such decision."""
        values = {"served_items": [int(i) for i in served_items], "served_detail": detail}
        with self._lock:
            row = self._pending.get(decision_id)
            if row is not None:
                row.update(values)
                return True
            if decision_id in self._amended or decision_id in self._written:
                self._amended[decision_id] = values
                return True
            return False

    def pending(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._amended)

    def flush(self) -> int:
        """Write everything queued now; returns how many rows were written."""
        with self._write_lock:
            with self._lock:
                rows = [dict(row) for row in self._pending.values()]  # copies: amends may go on
                amended = dict(self._amended)
            if not rows and not amended:
                return 0
            with self.engine.begin() as conn:
                if rows:
                    conn.execute(decisions_table.insert(), rows)
                for decision_id, values in amended.items():
                    conn.execute(
                        decisions_table.update().where(decisions_table.c.id == decision_id).values(**values)
                    )
            with self._lock:
                for decision_id, values in amended.items():
                    if self._amended.get(decision_id) is values:
                        del self._amended[decision_id]
                for row in rows:
                    current = self._pending.pop(row["id"], None)
                    if current is not None and any(current.get(c) != row.get(c) for c in AMENDED_COLUMNS):
                        self._amended[row["id"]] = {c: current.get(c) for c in AMENDED_COLUMNS}  # amended while writing
                    self._written[row["id"]] = None
                while len(self._written) > REMEMBER_WRITTEN:
                    self._written.popitem(last=False)
            return len(rows)

    def close(self) -> None:
        """Flush and stop the background thread (later ``add`` calls fail)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()
        self.flush()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval)
            with self._lock:
                closed = self._closed
            try:
                self.flush()
            except Exception:  # the rows stay queued; the next round (or close) writes them
                log.exception("writing %d bandit decisions failed; retrying", self.pending())
            if closed:
                return
