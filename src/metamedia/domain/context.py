"""The request context: when, on what and for how long someone asks for something to watch.

One spelling of each key — `hour` (0-23), `weekday` (Monday 0 … Sunday 6), `device`,
`session_minutes` — and one set of day parts, shared by the recommender (which stores the
context of each interaction), the bandit (which buckets decisions by it) and agent memory (whose
strategies are tagged with day parts). `day_of_week`, an older spelling, is read as `weekday`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

# (name, first hour, end hour) with hours past midnight counted on from 24, so late night is 23-29.
DAYPARTS: tuple[tuple[str, int, int], ...] = (
    ("morning", 5, 11),
    ("lunch", 11, 14),
    ("afternoon", 14, 18),
    ("evening", 18, 23),
    ("late_night", 23, 29),
)
WEEKEND_FROM = 5  # Saturday
# Numeric context fields and their ranges (inclusive).
FIELD_RANGES: dict[str, tuple[float, float]] = {
    "hour": (0, 23),
    "weekday": (0, 6),
    "session_minutes": (0, 24 * 60),
}
WEEKDAY_ALIASES = ("day_of_week",)


def daypart(hour: int) -> str:
    """Name of the part of the day an hour (0-23) falls in."""
    if not 0 <= int(hour) <= 23:
        raise InvalidInput(f"hour must be 0-23, got {hour}")
    h = int(hour) if int(hour) >= DAYPARTS[0][1] else int(hour) + 24
    for name, start, end in DAYPARTS:
        if start <= h < end:
            return name
    return DAYPARTS[-1][0]


def is_weekend(weekday: int) -> bool:
    if not 0 <= int(weekday) <= 6:
        raise InvalidInput(f"weekday must be 0..6 (Monday = 0), got {weekday}")
    return int(weekday) >= WEEKEND_FROM


def weekday_of(context: Mapping[str, Any]) -> int | None:
    """The context's weekday under its one name or an older alias (None when absent)."""
    for key in ("weekday", *WEEKDAY_ALIASES):
        value = context.get(key)
        if value is not None:
            return int(value)
    return None


@dataclass(frozen=True)
class RequestContext:
    """The known facts about one request; every field may be unknown."""

    hour: int | None = None
    weekday: int | None = None
    device: str | None = None
    session_minutes: float | None = None

    def __post_init__(self) -> None:
        for name, (low, high) in FIELD_RANGES.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                raise InvalidInput(f"context.{name} must be in {low:g}..{high:g}, got {value}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> RequestContext:
        """The known fields of a JSON-like context (other keys are ignored)."""
        data = data or {}
        hour, minutes, device = data.get("hour"), data.get("session_minutes"), data.get("device")
        return cls(
            hour=None if hour is None else int(hour),
            weekday=weekday_of(data),
            device=None if device in (None, "") else str(device),
            session_minutes=None if minutes is None else float(minutes),
        )

    @property
    def daypart(self) -> str | None:
        return None if self.hour is None else daypart(self.hour)

    @property
    def weekend(self) -> bool | None:
        return None if self.weekday is None else is_weekend(self.weekday)
