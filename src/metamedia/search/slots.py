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
    """A semaphore that knows which threads hold it (so `paused` is a no-op for any other thread)."""

    def __init__(self, slots: int) -> None:
        self.slots = max(1, int(slots))
        self._semaphore = threading.BoundedSemaphore(self.slots)
        self._local = threading.local()

    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)  # type: ignore[no-any-return]

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Take a slot for the duration (re-entrant within a thread)."""
        depth = self._depth()
        if depth == 0:
            self._semaphore.acquire()
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                self._semaphore.release()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Give the slot back while waiting for something that needs no interpreter lock."""
        depth = self._depth()
        if depth == 0:
            yield
            return
        self._local.depth = 0
        self._semaphore.release()
        try:
            yield
        finally:
            self._semaphore.acquire()
            self._local.depth = depth


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
