"""A user's taste as a vector in the item content space, learned online from interactions."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import DimensionMismatch, InvalidInput

# A watch counts as finished from this completion on.
FINISHED_COMPLETION = 0.9


@dataclass(frozen=True)
class PreferenceEvent:
    """One interaction as the profile learned it; the kept history replays into the same profile."""

    item_id: int
    strength: float
    genres: tuple[str, ...] = ()
    kind: str = ""
    completion: float | None = None
    timestamp: float = 0.0


class PreferenceVector:
    """Exponential moving average toward (or away from) the content vectors of interacted items.

    Each update moves the profile v to (1 - eta) v + eta * sign(s) * x for an item vector x and
    signal strength s in [-1, 1]: positive signals pull toward the item, skips and dislikes
    push away. The step eta = |s| * max(min_rate, 1 / (1 + evidence)) is large for a new user
    and settles as evidence (the sum of |s| so far) grows, down to ``min_rate`` so old tastes
    can still drift. With unit strengths and no floor this is exactly the running mean.
    """

    def __init__(self, dim: int, *, min_rate: float = 0.02, confidence_scale: float = 10.0) -> None:
        if dim <= 0:
            raise InvalidInput(f"dim must be positive, got {dim}")
        if not 0.0 < min_rate <= 1.0:
            raise InvalidInput(f"min_rate must be in (0, 1], got {min_rate}")
        if confidence_scale <= 0:
            raise InvalidInput(f"confidence_scale must be positive, got {confidence_scale}")
        self.dim = dim
        self.min_rate = min_rate
        self.confidence_scale = confidence_scale
        self.vector = np.zeros(dim, dtype=np.float32)
        self.evidence = 0.0
        self.genre_affinity: dict[str, float] = {}
        self._genre_evidence: dict[str, float] = {}
        self._genre_watches: dict[str, list[int]] = {}
        self.history: list[PreferenceEvent] = []

    def learning_rate(self, strength: float = 1.0) -> float:
        """The step the next update of this strength would take."""
        return abs(strength) * max(self.min_rate, 1.0 / (1.0 + self.evidence))

    @property
    def confidence(self) -> float:
        """0 for a new profile, approaching 1 as evidence accumulates."""
        return 1.0 - math.exp(-self.evidence / self.confidence_scale)

    def update(self, item_vector: np.ndarray, strength: float, event: PreferenceEvent | None = None) -> None:
        """Learn one interaction: move toward the item for strength > 0, away for strength < 0."""
        vector = np.asarray(item_vector, dtype=np.float32).ravel()
        if vector.shape[0] != self.dim:
            raise DimensionMismatch(f"item vector has {vector.shape[0]} dimensions, profile has {self.dim}")
        if not -1.0 <= strength <= 1.0:
            raise InvalidInput(f"strength must be in [-1, 1], got {strength}")
        recorded = event or PreferenceEvent(item_id=-1, strength=strength)
        if recorded.strength != strength:
            raise InvalidInput("event.strength differs from the strength passed to update()")
        if strength != 0.0:
            rate = self.learning_rate(strength)
            self.vector *= 1.0 - rate
            self.vector += (rate * math.copysign(1.0, strength)) * vector
            self.evidence += abs(strength)
        self._learn_genres(recorded)
        self.history.append(recorded)

    def direction(self) -> np.ndarray:
        """The profile as a unit vector (all zeros before any signal)."""
        norm = float(np.linalg.norm(self.vector))
        return self.vector / norm if norm > 0 else self.vector.copy()

    def similarity(self, item_vectors: np.ndarray) -> np.ndarray:
        """Cosine between the profile and each row of ``item_vectors`` (rows assumed unit length)."""
        matrix = np.asarray(item_vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise DimensionMismatch(f"item vectors must be (n, {self.dim}), got {matrix.shape}")
        return matrix @ self.direction()

    def genre_finish_rate(self, genre: str) -> float | None:
        """Share of watches of this genre that were finished; None when none were recorded."""
        finished, started = self._genre_watches.get(genre, (0, 0))
        return finished / started if started else None

    def genre_watch_count(self, genre: str) -> int:
        """How many watches (events with a completion) of this genre were recorded."""
        return self._genre_watches.get(genre, (0, 0))[1]

    @classmethod
    def rebuild(
        cls,
        dim: int,
        history: Iterable[PreferenceEvent],
        vector_of: Callable[[int], np.ndarray],
        **options: float,
    ) -> PreferenceVector:
        """Replay a kept history, in order, into a fresh profile (after a model or vector change)."""
        profile = cls(dim, **options)
        for event in history:
            profile.update(vector_of(event.item_id), event.strength, event)
        return profile

    def _learn_genres(self, event: PreferenceEvent) -> None:
        for genre in event.genres:
            seen = self._genre_evidence.get(genre, 0.0)
            rate = max(self.min_rate, 1.0 / (1.0 + seen))
            current = self.genre_affinity.get(genre, 0.0)
            self.genre_affinity[genre] = current + rate * (event.strength - current)
            self._genre_evidence[genre] = seen + 1.0
            if event.completion is not None:
                counts = self._genre_watches.setdefault(genre, [0, 0])
                counts[0] += int(event.completion >= FINISHED_COMPLETION)
                counts[1] += 1
