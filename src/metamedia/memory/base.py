"""Shared pieces of the memory package: the embedder interface, clocks, vectors, context tags."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..domain.context import DAYPARTS, daypart, is_weekend, weekday_of
from ..errors import DimensionMismatch, InvalidInput

Clock = Callable[[], float]
DAY_SECONDS = 86_400.0


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows (metamedia.embed.TextEmbedder)."""

    dim: int

    def encode(self, texts: list[str]) -> np.ndarray: ...


def wall_clock() -> float:
    """Seconds since the epoch; the default clock of every memory store."""
    return time.time()


def new_id() -> str:
    """A fresh random id (32 hex chars)."""
    return uuid.uuid4().hex


def vector_to_bytes(vector: np.ndarray, dim: int) -> bytes:
    """Serialise one embedding as little-endian float32 bytes, checking its dimension."""
    flat = np.asarray(vector, dtype="<f4").reshape(-1)
    if flat.shape[0] != dim:
        raise DimensionMismatch(f"embedding has {flat.shape[0]} dimensions, expected {dim}")
    return flat.tobytes()


def vector_from_bytes(raw: bytes, dim: int) -> np.ndarray:
    """Inverse of vector_to_bytes."""
    vec = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if vec.shape[0] != dim:
        raise DimensionMismatch(f"stored embedding has {vec.shape[0]} dimensions, expected {dim}")
    return vec


class CachedEncoder:
    """Wraps an embedder with a small LRU cache, since retrieval queries repeat (few contexts)."""

    def __init__(self, embedder: Embedder, cache_size: int = 1024) -> None:
        if not isinstance(getattr(embedder, "dim", None), int) or embedder.dim <= 0:
            raise InvalidInput("the embedder must expose a positive integer `dim`")
        self.embedder = embedder
        self.dim = embedder.dim
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def encode_many(self, texts: list[str]) -> np.ndarray:
        """Embed texts as an (n, dim) float32 matrix, checking the embedder's output shape."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.asarray(self.embedder.encode(list(texts)), dtype=np.float32)
        if out.ndim != 2 or out.shape != (len(texts), self.dim):
            raise DimensionMismatch(
                f"embedder returned shape {out.shape}, expected ({len(texts)}, {self.dim})"
            )
        return out

    def encode_one(self, text: str) -> np.ndarray:
        """Embed one text, from the cache when seen before."""
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        vec = self.encode_many([text])[0]
        vec.setflags(write=False)
        self._cache[text] = vec
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return vec


# Context tags: the vocabulary strategies use to say when they apply (day parts: metamedia.domain).
SHORT_SESSION_MINUTES = 60
LONG_SESSION_MINUTES = 120
CONTEXT_TAGS: tuple[str, ...] = (
    *(name for name, _, _ in DAYPARTS),
    "weekday",
    "weekend",
    "short_session",
    "long_session",
    "device:tv",
    "device:mobile",
    "device:tablet",
    "device:desktop",
)


def context_tags(context: Mapping[str, Any]) -> set[str]:
    """Tags describing a request context (hour, weekday, device, session_minutes)."""
    tags: set[str] = set()
    hour = context.get("hour")
    if hour is not None:
        tags.add(daypart(int(hour)))
    day = weekday_of(context)  # `weekday`, as the recommender sends it, or the older `day_of_week`
    if day is not None:
        tags.add("weekend" if is_weekend(day) else "weekday")
    device = context.get("device")
    if device:
        tags.add(f"device:{str(device).lower()}")
    minutes = context.get("session_minutes")
    if minutes is not None:
        if float(minutes) <= SHORT_SESSION_MINUTES:
            tags.add("short_session")
        elif float(minutes) >= LONG_SESSION_MINUTES:
            tags.add("long_session")
    return tags


def context_text(task: str, context: Mapping[str, Any]) -> str:
    """A sentence describing a task in its context, used as the retrieval query."""
    parts = [task]
    hour = context.get("hour")
    if hour is not None:
        parts.append(f"during the {daypart(int(hour)).replace('_', ' ')}")
    minutes = context.get("session_minutes")
    if minutes is not None:
        parts.append(f"with {int(float(minutes))} minutes available")
    device = context.get("device")
    if device:
        parts.append(f"on a {device}")
    return " ".join(parts)


class GrowingMatrix:
    """Row-appendable matrix with amortised O(1) appends (capacity doubles)."""

    def __init__(self, dim: int, capacity: int = 256, dtype: type = np.float32) -> None:
        self.dim = dim
        self.dtype = dtype
        self._data: np.ndarray = np.zeros((max(capacity, 1), dim), dtype=dtype)
        self.size = 0

    def append(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows, dtype=self.dtype).reshape(-1, self.dim)
        needed = self.size + rows.shape[0]
        if needed > self._data.shape[0]:
            grown: np.ndarray = np.zeros((max(needed, 2 * self._data.shape[0]), self.dim), dtype=self.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : needed] = rows
        self.size = needed

    @property
    def view(self) -> np.ndarray:
        """The filled rows (a view, not a copy)."""
        return self._data[: self.size]


def cosine_scores(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """matrix @ query for unit rows, in one thread: for a few thousand rows a threaded BLAS call
    mostly waits for its threads on a busy 2-core machine (p95 of tens of ms)."""
    return np.einsum("ij,j->i", matrix, np.asarray(query, dtype=np.float32), optimize=False)
