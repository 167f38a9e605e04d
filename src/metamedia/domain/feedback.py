"""Feedback kinds and what each one is worth as a bandit outcome."""

from __future__ import annotations

# An interaction kind as the bandit's outcome kind (kinds not listed are their own outcome).
OUTCOME_OF_KIND = {"like": "click", "add_to_list": "click", "dislike": "skip", "rewatch": "watch"}
REWARDED_OUTCOMES = ("click", "watch", "rating", "skip")


def outcome_reward(
    kind: str, *, value: float | None, scale: str | None, completion: float | None
) -> tuple[str, float] | None:
    """(outcome kind, value on the bandit's scale) of one interaction, or None if it earns nothing.

    A watch is worth its completion (1.0 when unknown); a rating its value on the 0-10 scale.
    """
    outcome = OUTCOME_OF_KIND.get(kind, kind)
    if outcome not in REWARDED_OUTCOMES:
        return None
    number = 1.0
    if outcome == "watch":
        number = 1.0 if completion is None else completion
    elif outcome == "rating" and value is not None:
        number = value * 2.0 if scale == "five" else value
    return outcome, number
