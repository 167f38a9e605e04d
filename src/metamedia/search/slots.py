"""CPU slots: how many searches run their Python work at once.

Searches are CPU work under one interpreter lock. Past a few at once, more threads do not add
throughput; they only make every thread wait longer for the lock — a write's thread too, between
each of its SQL round trips (a 50-client mix showed item writes waiting ~0.7 s p50 that way). A
search holds a slot for its Python work and lets go of it while it waits for its query embedding
(ONNX Runtime runs without the interpreter lock, and queries waiting together are embedded in one
batch), so the batches stay as large as the concurrency allows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class CpuSlots:
    """Counted slots that know which threads hold them (so `paused` is a no-op for any other thread).

    While a catalog write is pending (`writing`), searches are admitted to at most `write_slots`
    slots: a write's thread then shares the interpreter lock with one search instead of several,
    between each of its SQL round trips and fsyncs. Searches already running finish their turn; a
    search coming back from the embedder waits like a new one.
    """

    def __init__(self, slots: int, *, write_slots: int = 1) -> None:
        self.slots = max(1, int(slots))
        self.write_slots = max(1, min(int(write_slots), self.slots))
        self._cond = threading.Condition(threading.Lock())
        self._busy = 0
        self._writes = 0
        self._local = threading.local()

    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)  # type: ignore[no-any-return]

    def _limit(self) -> int:
        return self.write_slots if self._writes else self.slots

    def _acquire(self) -> None:
        with self._cond:
            while self._busy >= self._limit():
                self._cond.wait()
            self._busy += 1

    def _release(self) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Take a slot for the duration (re-entrant within a thread)."""
        depth = self._depth()
        if depth == 0:
            self._acquire()
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                self._release()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Give the slot back while waiting for something that needs no interpreter lock."""
        depth = self._depth()
        if depth == 0:
            yield
            return
        self._local.depth = 0
        self._release()
        try:
            yield
        finally:
            self._acquire()
            self._local.depth = depth

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Mark a catalog write pending for the duration (nestable, from any thread)."""
        with self._cond:
            self._writes += 1
        try:
            yield
        finally:
            with self._cond:
                self._writes -= 1
                if not self._writes:
                    self._cond.notify_all()

    @property
    def writes_pending(self) -> int:
        return self._writes


class HasSlots(Protocol):
    slots: CpuSlots


S = TypeVar("S", bound=HasSlots)


def in_slot(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    """Run a method of an object with `slots` while holding one of them."""

    @wraps(method)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.slots.hold():
            return method(self, *args, **kwargs)

    return wrapper
