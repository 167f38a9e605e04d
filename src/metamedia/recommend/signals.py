"""Interaction kinds and how strongly each says "more like this" (+1) or "less like this" (-1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from ..errors import InvalidInput


class SignalKind(StrEnum):
    """Every interaction the engine learns from."""

    VIEW = "view"
    CLICK = "click"
    WATCH = "watch"
    REWATCH = "rewatch"
    RATING = "rating"
    LIKE = "like"
    DISLIKE = "dislike"
    SKIP = "skip"
    ADD_TO_LIST = "add_to_list"


# Fixed strengths of the kinds that carry no value of their own.
BASE_STRENGTH: dict[SignalKind, float] = {
    SignalKind.VIEW: 0.05,
    SignalKind.CLICK: 0.1,
    SignalKind.REWATCH: 1.0,
    SignalKind.LIKE: 0.8,
    SignalKind.DISLIKE: -1.0,
    SignalKind.SKIP: -0.4,
    SignalKind.ADD_TO_LIST: 0.5,
}

RATING_SCALES: dict[str, tuple[float, float]] = {"five": (0.5, 5.0), "ten": (1.0, 10.0)}


@dataclass(frozen=True)
class Signal:
    """One interaction as reported by a client.

    ``value`` is the rating for RATING; ``completion`` (0..1) or ``watch_seconds`` with
    ``runtime_seconds`` describe a WATCH.
    """

    kind: SignalKind
    value: float | None = None
    completion: float | None = None
    watch_seconds: float | None = None
    runtime_seconds: float | None = None
    scale: str = "five"


def rating_strength(rating: float, scale: str = "five") -> float:
    """A rating mapped linearly onto [-1, 1]: the scale's lowest is -1, its highest +1.

    On the 0.5-5 scale 4.0 -> +0.56, 3.0 -> +0.11, 2.5 -> 0.0; on 1-10, 5.5 -> 0.0.
    """
    if scale not in RATING_SCALES:
        raise InvalidInput(f"unknown rating scale {scale!r}; use one of {sorted(RATING_SCALES)}")
    low, high = RATING_SCALES[scale]
    if not low <= rating <= high:
        raise InvalidInput(f"rating {rating} is outside the {scale} scale [{low}, {high}]")
    return 2.0 * (rating - low) / (high - low) - 1.0


def rating_strengths(ratings: np.ndarray, scale: str = "five") -> np.ndarray:
    """``rating_strength`` for a whole array of ratings at once (float32)."""
    if scale not in RATING_SCALES:
        raise InvalidInput(f"unknown rating scale {scale!r}; use one of {sorted(RATING_SCALES)}")
    low, high = RATING_SCALES[scale]
    values = np.asarray(ratings, dtype=np.float64)
    if values.size and (values.min() < low or values.max() > high):
        raise InvalidInput(
            f"ratings span [{values.min()}, {values.max()}], outside the {scale} scale [{low}, {high}]"
        )
    return (2.0 * (values - low) / (high - low) - 1.0).astype(np.float32)


def rating_scale_of(ratings: np.ndarray) -> str:
    """ "ten" when any rating exceeds 5, else "five" (MovieLens' 0.5-5 stars)."""
    return "ten" if np.asarray(ratings).size and float(np.max(ratings)) > 5.0 else "five"


def completion_strength(completion: float) -> float:
    """Watching to the end is +1, a third is neutral, abandoning at the start is -0.5."""
    if not 0.0 <= completion <= 1.0:
        raise InvalidInput(f"completion must be in [0, 1], got {completion}")
    return max(-0.5, min(1.0, 1.5 * completion - 0.5))


def signal_strength(signal: Signal) -> float:
    """How much ``signal`` should pull a profile toward (+) or push it away from (-) the item."""
    kind = SignalKind(signal.kind)
    if kind is SignalKind.RATING:
        if signal.value is None:
            raise InvalidInput("a rating signal needs a value")
        return rating_strength(signal.value, signal.scale)
    if kind is SignalKind.WATCH:
        return completion_strength(watch_completion(signal))
    return BASE_STRENGTH[kind]


def watch_completion(signal: Signal) -> float:
    """The watched fraction: ``completion`` when given, else watch time over runtime (capped at 1)."""
    if signal.completion is not None:
        return signal.completion
    if signal.watch_seconds is not None and signal.runtime_seconds:
        if signal.watch_seconds < 0 or signal.runtime_seconds < 0:
            raise InvalidInput("watch time and runtime must be non-negative")
        return min(1.0, signal.watch_seconds / signal.runtime_seconds)
    raise InvalidInput("a watch signal needs completion, or watch_seconds with runtime_seconds")
