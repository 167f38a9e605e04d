"""Per-key rate limits with the `limits` package: Redis when configured, else a SQLite file shared
by the server's processes when it runs several, else memory.

Limits are moving windows ("100/second;3000/minute"); every request of a key counts against all
of them. A refused request gets 429 with `Retry-After` (whole seconds until a slot frees up).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import HTTPException
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..errors import BackendUnavailable, InvalidInput
from .ratelimit_sqlite import sqlite_uri

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("metamedia.api.ratelimit")


class RateLimiter:
    """Counts hits per identifier (an API key id, or a client address when auth is off)."""

    def __init__(self, spec: str, *, redis_url: str = "", shared_file: Path | None = None) -> None:
        """Redis when `redis_url` is given, else the SQLite file `shared_file` when given, else memory."""
        try:
            off = spec.strip().lower() in ("", "off", "none")
            self.items: list[RateLimitItem] = [] if off else parse_many(spec)
        except ValueError as exc:
            raise InvalidInput(f"invalid rate limit {spec!r}: {exc}") from exc
        if redis_url:
            self.backend, uri = "redis", redis_url
        elif shared_file is not None:
            self.backend, uri = "sqlite", sqlite_uri(shared_file)
        else:
            self.backend, uri = "memory", "memory://"
        try:
            # wrapped: a failing backend raises limits' StorageError, answered 503 by `hit`
            self.storage: Storage = storage_from_string(uri, wrap_exceptions=True)  # type: ignore[assignment]
        except BackendUnavailable:
            raise  # the SQLite storage names the file and what is wrong with it
        except Exception as exc:  # the library raises several types for a bad URI or missing client
            raise BackendUnavailable(f"cannot use rate-limit storage: {type(exc).__name__}") from exc
        self.strategy = MovingWindowRateLimiter(self.storage)

    @classmethod
    def for_settings(cls, settings: Settings) -> RateLimiter:
        """Redis when configured; else a SQLite file in the data directory when the server runs
        several processes (`workers` > 1, or 0 = one per core on a multi-core machine); else memory."""
        workers = int(getattr(settings, "workers", 1))
        several = workers > 1 or (workers == 0 and (os.cpu_count() or 1) > 1)
        shared = Path(settings.data_dir) / "run" / "ratelimit.sqlite3" if several else None
        return cls(settings.rate_limit, redis_url=settings.redis_url, shared_file=shared)

    @property
    def in_process(self) -> bool:
        """True when a hit never waits on the network (memory, or the local SQLite file: ~µs)."""
        return self.backend in ("memory", "sqlite")

    @property
    def enabled(self) -> bool:
        return bool(self.items)

    def hit(self, identifier: str, *, namespace: str = "key") -> None:
        """Count one request; raise 429 with Retry-After when any window is full."""
        for item in self.items:
            try:
                admitted = self.strategy.hit(item, namespace, identifier)
                stats = None if admitted else self.strategy.get_window_stats(item, namespace, identifier)
            except StorageError as exc:
                log.error(
                    "rate-limit storage (%s) failed: %s", self.backend, type(exc.storage_error).__name__
                )
                raise BackendUnavailable(f"rate-limit storage ({self.backend}) unavailable") from exc
            if stats is not None:
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise HTTPException(
                    status_code=429,
                    detail=f"rate limit exceeded ({item}); retry in {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )

    def ping(self) -> bool:
        """True when the storage answers (always, for memory)."""
        try:
            return bool(self.storage.check())
        except Exception:  # a down Redis is reported, not raised, by readiness checks
            log.warning("rate-limit storage (%s) does not answer", self.backend)
            return False

    def reset(self) -> None:
        self.storage.reset()
