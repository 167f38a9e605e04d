"""The decision context and its bucketing into the keys the Beta–Bernoulli posteriors live under."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..domain.context import daypart, is_weekend
from ..errors import InvalidInput

EXPERIENCED_AFTER = 50  # interactions; the "new vs experienced" threshold
LONG_SESSION_MINUTES = 45.0
FEATURES = ("daypart", "weekend", "device", "session", "experience", "genre")


@dataclass(frozen=True)
class BanditContext:
    """What is known when an algorithm is picked for a request."""

    hour: int = 12
    weekday: int = 0  # Monday = 0 ... Sunday = 6
    device: str = "unknown"
    session_minutes: float = 0.0  # estimated length of the current session
    interactions: int = 0  # the user's interactions so far
    recent_genres: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0 <= self.hour <= 23:
            raise InvalidInput(f"hour must be 0..23, got {self.hour}")
        if not 0 <= self.weekday <= 6:
            raise InvalidInput(f"weekday must be 0..6 (Monday = 0), got {self.weekday}")
        if self.session_minutes < 0 or self.interactions < 0:
            raise InvalidInput("session_minutes and interactions must be non-negative")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> BanditContext:
        """A context from a JSON-like mapping; unknown keys are rejected, missing ones defaulted."""
        if not data:
            return cls()
        unknown = set(data) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise InvalidInput(f"unknown context field(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        if "recent_genres" in values:
            values["recent_genres"] = tuple(str(g) for g in values["recent_genres"] or ())
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidInput(f"invalid context: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["recent_genres"] = list(self.recent_genres)
        return out


@dataclass(frozen=True)
class ContextBucketer:
    """Maps a context to a bucket key built from the chosen ``features`` (order kept).

    Fewer features mean fewer, better-populated buckets; the replay report compares
    bucketings. An empty feature list gives one global bucket (context-free Thompson sampling).
    """

    features: tuple[str, ...] = ("experience", "session")

    def __post_init__(self) -> None:
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise InvalidInput(f"unknown bucket feature(s) {unknown}; choose from {list(FEATURES)}")

    def values(self, context: BanditContext) -> dict[str, str]:
        return {
            "daypart": daypart(context.hour),
            "weekend": "weekend" if is_weekend(context.weekday) else "weekday",
            "device": context.device.strip().lower() or "unknown",
            "session": "long" if context.session_minutes >= LONG_SESSION_MINUTES else "short",
            "experience": "experienced" if context.interactions >= EXPERIENCED_AFTER else "new",
            "genre": context.recent_genres[0] if context.recent_genres else "none",
        }

    def bucket(self, context: BanditContext) -> str:
        """The bucket key, e.g. ``experience=new|session=short``; ``*`` for the global bucket."""
        if not self.features:
            return "*"
        values = self.values(context)
        return "|".join(f"{name}={values[name]}" for name in self.features)

    @classmethod
    def parse(cls, features: Sequence[str] | str) -> ContextBucketer:
        """From a list or a comma-separated string of feature names ("" = global bucket)."""
        names = [f.strip() for f in features.split(",")] if isinstance(features, str) else list(features)
        return cls(tuple(n for n in names if n))
