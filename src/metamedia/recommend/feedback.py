"""One stored interaction handed to everything that learns from it, in a fixed order.

`RecommendService.record_interaction` validates and stores the interaction, then calls
`FeedbackHub.dispatch` once. Each listener gets the same `StoredInteraction` and may return a
value that becomes a field of the answer: the preference profile ("profile"), the bandit reward
and agent memory ("reward", only when the interaction names a recommendation decision; a
listener returns NOT_APPLICABLE to leave its field out), and the event stream (no field). A new learner is one more `hub.add(...)`, not another edit of the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..models import MediaItem
from .ports import LoggedChoice


@dataclass(frozen=True)
class StoredInteraction:
    """An interaction after it was validated and committed."""

    user_id: str
    item: MediaItem
    kind: str
    strength: float
    value: float | None
    scale: str | None
    completion: float | None
    context: dict[str, Any]
    timestamp: float
    decision: LoggedChoice | None
    row: dict[str, Any]  # the stored row as answered to the caller


Listener = Callable[[StoredInteraction], Any]
NOT_APPLICABLE = object()  # what a listener returns when the interaction is none of its business


@dataclass
class FeedbackHub:
    """Listeners by the answer field their result goes to (None: result not reported)."""

    listeners: list[tuple[str | None, Listener]] = field(default_factory=list)

    def add(self, answer_field: str | None, listener: Listener) -> None:
        self.listeners.append((answer_field, listener))

    def dispatch(self, interaction: StoredInteraction) -> dict[str, Any]:
        """Run every listener in order; returns {answer field: result}."""
        out: dict[str, Any] = {}
        for answer_field, listener in self.listeners:
            result = listener(interaction)
            if answer_field is not None and result is not NOT_APPLICABLE:
                out[answer_field] = result
        return out
