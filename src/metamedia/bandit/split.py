"""Stable per-user traffic splits for A/B tests, and the comparison report of their outcomes."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from ..errors import InvalidInput


@dataclass(frozen=True)
class TrafficSplit:
    """Variants with traffic shares, e.g. {"control": 0.95, "candidate": 0.05}.

    A user's variant depends only on the salt and the user id (SHA-256 → a point in [0, 1)),
    so it never changes between requests or restarts; a new salt reshuffles everyone.
    """

    shares: Mapping[str, float]
    salt: str = "bandit-ab"

    def __post_init__(self) -> None:
        if not self.shares:
            raise InvalidInput("a traffic split needs at least one variant")
        if any(s < 0 for s in self.shares.values()):
            raise InvalidInput("traffic shares must be non-negative")
        if abs(sum(self.shares.values()) - 1.0) > 1e-9:
            raise InvalidInput(f"traffic shares must sum to 1, got {sum(self.shares.values())}")

    def point(self, user_id: str | int) -> float:
        digest = hashlib.sha256(f"{self.salt}:{user_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def variant(self, user_id: str | int) -> str:
        """The variant this user is always assigned to."""
        point = self.point(user_id)
        edge = 0.0
        last = ""
        for name, share in self.shares.items():
            edge += share
            last = name
            if point < edge:
                return name
        return last


def compare_variants(rewards: Mapping[str, Sequence[float]], control: str) -> dict[str, Any]:
    """Mean reward per variant with 95% intervals, and each variant against ``control``.

    Welch's t-test (unequal variances) for the difference of means; the lift is relative
    to the control's mean.
    """
    if control not in rewards:
        raise InvalidInput(f"control variant {control!r} has no rewards")
    summary: dict[str, Any] = {}
    for name, values in rewards.items():
        arr = np.asarray(values, dtype=np.float64)
        se = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else float("nan")
        mean = float(arr.mean()) if len(arr) else float("nan")
        summary[name] = {"n": len(arr), "mean": mean, "ci95": [mean - 1.96 * se, mean + 1.96 * se]}
    base = np.asarray(rewards[control], dtype=np.float64)
    comparisons: dict[str, dict[str, float | None]] = {}
    for name, values in rewards.items():
        if name == control:
            continue
        arr = np.asarray(values, dtype=np.float64)
        if len(arr) < 2 or len(base) < 2:
            comparisons[name] = {"difference": None, "p_value": None}
            continue
        with warnings.catch_warnings():
            # scipy warns about a constant group (e.g. all rewards 0.2); Welch's test is still defined.
            warnings.simplefilter("ignore", RuntimeWarning)
            test = stats.ttest_ind(arr, base, equal_var=False)
        diff = float(arr.mean() - base.mean())
        comparisons[name] = {
            "difference": diff,
            "lift": diff / float(base.mean()) if base.mean() else None,
            "p_value": float(test.pvalue),
        }
    return {"control": control, "variants": summary, "versus_control": comparisons}
