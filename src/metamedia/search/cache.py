"""Cached search results, invalidated by every catalog write.

In memory (an LRU per process) by default. With `redis_url` set, results live in Redis and the
generation counter that keys them is a Redis integer, so several server processes over one store of
record share the cache and a write in any of them invalidates it for all. Redis is an optimisation:
when it cannot be reached the search is computed and answered anyway (and the failure logged once
per outage), never failed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger("metamedia.search.cache")
REDIS_TTL_S = 3600


class ResultCache(Protocol):
    """Keys must start with the `generation()` read before the search was computed, so a result
    computed while a write happened is stored under the old generation and never served after it."""

    hits: int
    misses: int
    backend: str

    def generation(self) -> int: ...  # -1: the cache is unavailable, do not use it
    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None: ...
    def put(self, key: tuple[Any, ...], value: dict[str, Any]) -> None: ...
    def invalidate(self) -> None: ...


class MemoryResultCache:
    """A per-process LRU; `invalidate` bumps the generation and drops everything.

    Entries are kept as JSON text: decoding is several times cheaper than the deep copy that kept
    callers from changing a cached result, and answers come back exactly as from the Redis cache."""

    backend = "memory"

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[Any, ...], str] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self.hits = 0
        self.misses = 0
        self._last = threading.local()  # this thread's last stored result and its JSON text

    def generation(self) -> int:
        return self._generation

    def text_of(self, value: dict[str, Any]) -> str | None:
        """The JSON text `put` made of `value` in this thread (the same object, not an equal one), or
        None: the HTTP route sends it as is instead of encoding a new search's answer twice."""
        last = getattr(self._last, "entry", None)
        return last[1] if last is not None and last[0] is value else None

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        hit = self.get_text(key)
        return None if hit is None else json.loads(hit)  # type: ignore[no-any-return]

    def get_text(self, key: tuple[Any, ...]) -> str | None:
        """The cached result as its JSON text (what an HTTP answer sends as is), or None."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
        return hit

    def put(self, key: tuple[Any, ...], value: dict[str, Any]) -> None:
        try:
            encoded = json.dumps(value, separators=(",", ":"), allow_nan=False)  # stored as JSON like the Redis cache: a caller's copy is its own
        except (TypeError, ValueError):
            log.debug("result not cached: not JSON-serialisable")
            return
        self._last.entry = (value, encoded)
        with self._lock:
            if key[0] != self._generation:
                return  # computed before a write: already stale
            self._entries[key] = encoded
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()


class RedisResultCache:
    """Results in Redis under `<prefix>:<sha256 of the key>` (the key starts with the generation),
    with a TTL; the generation is `INCR`ed by every write, so stale entries are never read and
    simply expire. An invalidation that could not reach Redis is retried before the next read."""

    backend = "redis"

    def __init__(self, url: str, *, prefix: str = "metamedia:search", ttl_s: int = REDIS_TTL_S) -> None:
        # deferred: redis is needed only when redis_url is set
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self._failing = False
        self._pending_invalidation = False

    def _failed(self, action: str, exc: Exception) -> None:
        self.errors += 1
        if not self._failing:
            log.warning("search cache in Redis unavailable (%s: %s); answering without it", action, exc)
        self._failing = True

    def generation(self) -> int:
        try:
            if self._pending_invalidation:
                self.client.incr(f"{self.prefix}:generation")
                self._pending_invalidation = False
            raw = self.client.get(f"{self.prefix}:generation")
        except Exception as exc:  # redis-py raises many types (connection, timeout, response)
            self._failed("read", exc)
            return -1
        if self._failing:
            log.info("search cache in Redis reachable again")
        self._failing = False
        return int(raw) if raw is not None else 0  # type: ignore[arg-type]

    def _key(self, key: tuple[Any, ...]) -> str:
        return f"{self.prefix}:{hashlib.sha256(repr(key).encode()).hexdigest()}"

    def get(self, key: tuple[Any, ...]) -> dict[str, Any] | None:
        try:
            raw = self.client.get(self._key(key))
        except Exception as exc:
            self._failed("read", exc)
            return None
        if raw is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(raw)  # type: ignore[arg-type, no-any-return]

    def put(self, key: tuple[Any, ...], value: dict[str, Any]) -> None:
        try:
            self.client.set(self._key(key), json.dumps(value), ex=self.ttl_s)
        except Exception as exc:
            self._failed("write", exc)

    def invalidate(self) -> None:
        try:
            self.client.incr(f"{self.prefix}:generation")
        except Exception as exc:
            self._pending_invalidation = True
            self._failed("invalidate", exc)


def open_result_cache(redis_url: str, size: int = 1024) -> ResultCache:
    """Redis-backed when a URL is given, else in memory."""
    return RedisResultCache(redis_url) if redis_url else MemoryResultCache(size)
