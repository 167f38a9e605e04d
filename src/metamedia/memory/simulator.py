"""Interaction-log simulator with planted feature effects and popularity confounding.

Each row is one recommendation shown to a user. Item popularity z ~ N(0, 1) drives both exposure
and completion: feature f is on with probability sigmoid(base_f + exposure_f * z), and

  completion = clip(intercept + sum_f effect_f * T_f + user_offset + popularity_effect * z + noise, 0, 1)

so the planted effect of f is exactly effect_f (clipping is kept rare by the default scales),
while the naive difference in means of f also carries exposure_f's share of the popularity effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURES: tuple[str, ...] = (
    "genre_match",
    "platform_availability",
    "recency",
    "rating_alignment",
    "familiarity",
    "time_of_day",
    "device",
    "rank_position",
    "runtime_fit",
)

# Planted effects on completion. Recency and rank position are small but strongly confounded:
# popular items are both newer / ranked higher and finished more often.
PLANTED_EFFECTS: dict[str, float] = {
    "runtime_fit": 0.14,
    "genre_match": 0.11,
    "rating_alignment": 0.08,
    "platform_availability": 0.06,
    "familiarity": 0.05,
    "time_of_day": 0.04,
    "device": -0.04,
    "rank_position": 0.05,
    "recency": 0.045,
}
EXPOSURE: dict[str, float] = {
    "runtime_fit": 0.0,
    "genre_match": 0.4,
    "rating_alignment": 0.6,
    "platform_availability": 0.3,
    "familiarity": 0.5,
    "time_of_day": 0.0,
    "device": 0.2,
    "rank_position": 1.6,
    "recency": 1.4,
}


@dataclass(frozen=True)
class SimulatedLog:
    """A simulated interaction log and the truth it was generated from."""

    features: np.ndarray  # (n, p) 0/1
    completion: np.ndarray  # (n,)
    popularity: np.ndarray  # (n,) the confounder
    user_ids: np.ndarray  # (n,)
    feature_names: tuple[str, ...]
    true_effects: dict[str, float]
    clipped_share: float


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate_interactions(
    n: int = 20_000,
    *,
    n_users: int = 200,
    effects: dict[str, float] | None = None,
    exposure: dict[str, float] | None = None,
    popularity_effect: float = 0.08,
    intercept: float = 0.22,
    noise: float = 0.05,
    user_spread: float = 0.03,
    seed: int = 0,
) -> SimulatedLog:
    """Generate n interactions with planted effects and popularity confounding (see module docstring)."""
    effects = dict(PLANTED_EFFECTS if effects is None else effects)
    exposure = dict(EXPOSURE if exposure is None else exposure)
    names = tuple(effects)
    rng = np.random.default_rng(seed)
    popularity = rng.standard_normal(n)
    users = rng.integers(0, n_users, size=n)
    user_offset = rng.normal(0.0, user_spread, size=n_users)[users]
    columns = []
    for name in names:
        base = rng.uniform(-0.4, 0.4)
        p_on = _sigmoid(base + exposure.get(name, 0.0) * popularity)
        columns.append((rng.random(n) < p_on).astype(np.float64))
    x = np.column_stack(columns)
    raw = intercept + x @ np.array([effects[f] for f in names]) + user_offset + popularity_effect * popularity
    raw += rng.normal(0.0, noise, size=n)
    completion = np.clip(raw, 0.0, 1.0)
    return SimulatedLog(
        features=x,
        completion=completion,
        popularity=popularity,
        user_ids=np.array([f"user{u}" for u in users]),
        feature_names=names,
        true_effects=effects,
        clipped_share=float(np.mean((raw < 0) | (raw > 1))),
    )
