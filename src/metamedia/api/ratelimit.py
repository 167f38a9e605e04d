"""Per-key rate limits with the `limits` package: in memory by default, Redis when configured.

Limits are moving windows ("100/second;3000/minute"); every request of a key counts against all
of them. A refused request gets 429 with `Retry-After` (whole seconds until a slot frees up).
"""

from __future__ import annotations

import logging
import math
import time

from fastapi import HTTPException
from limits import RateLimitItem, parse_many
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from ..errors import BackendUnavailable, InvalidInput

log = logging.getLogger("metamedia.api.ratelimit")


class RateLimiter:
    """Counts hits per identifier (an API key id, or a client address when auth is off)."""

    def __init__(self, spec: str, *, redis_url: str = "") -> None:
        try:
            off = spec.strip().lower() in ("", "off", "none")
            self.items: list[RateLimitItem] = [] if off else parse_many(spec)
        except ValueError as exc:
            raise InvalidInput(f"invalid rate limit {spec!r}: {exc}") from exc
        uri = redis_url or "memory://"
        try:
            self.storage: Storage = storage_from_string(uri)  # type: ignore[assignment]
        except Exception as exc:  # the library raises several types for a bad URI or missing client
            raise BackendUnavailable(f"cannot use rate-limit storage: {type(exc).__name__}") from exc
        self.backend = "redis" if redis_url else "memory"
        self.strategy = MovingWindowRateLimiter(self.storage)

    @property
    def enabled(self) -> bool:
        return bool(self.items)

    def hit(self, identifier: str, *, namespace: str = "key") -> None:
        """Count one request; raise 429 with Retry-After when any window is full."""
        for item in self.items:
            if not self.strategy.hit(item, namespace, identifier):
                stats = self.strategy.get_window_stats(item, namespace, identifier)
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
