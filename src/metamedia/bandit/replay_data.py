"""The replay's event stream: MovieLens held-out ratings turned into (context, reward per arm) steps.

Method. Each user's ratings are split in time (``temporal_split``: the last 20% held out).
Every arm (a recommendation algorithm) is fitted once on the training ratings (implicit
feedback: any rating = 1) over the items rated at least ``min_item_ratings`` times in
training, and ranks its top ``depth`` unseen items per user. A user's held-out ratings, in
time order, are cut into windows of ``window`` ratings; each window is one decision step.
At a step an arm serves its top ``k`` items minus those the user rated in earlier windows,
and the slate's reward is the composite reward of the window's ratings on served items:
a rating ≥ 3 is a click, a full watch and a rating (×2 to the 0–10 scale); a rating < 3 is
a click followed by a skip. Steps are ordered by the time of their window's first rating.
Context: hour and weekday (UTC) of that rating; the device is unknown in MovieLens; the
session length is the user's median training session (ratings less than 30 minutes
apart); experience counts training ratings plus earlier held-out ones (≥ 50 =
experienced); recent genres are the most frequent genres of the user's last 10 ratings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..evaluation.data import fallback_item_vectors, load_movie_genres_and_years, load_ratings
from ..evaluation.split import interaction_matrix, temporal_split
from ..recommend.als import ALSRecommender
from ..recommend.base import ScoringRecommender
from ..recommend.content import ContentRecommender
from ..recommend.ease import EASERecommender
from ..recommend.graph import GraphFilterRecommender
from ..recommend.itemknn import ItemKNNRecommender
from ..recommend.popularity import PopularityRecommender
from .context import BanditContext
from .reward import Outcome, RewardWeights, composite_reward

SESSION_GAP_SECONDS = 30 * 60


@dataclass(frozen=True)
class ReplayStream:
    """Decision steps in time order: a context and every arm's reward at each step."""

    arms: tuple[str, ...]
    contexts: list[BanditContext]
    users: np.ndarray  # user index per step
    rewards: np.ndarray  # (n_steps, n_arms)


def default_arms(seed: int = 0) -> list[ScoringRecommender]:
    return [
        PopularityRecommender(),
        ItemKNNRecommender(neighbours=100),
        ALSRecommender(factors=64, iterations=15, seed=seed),
        EASERecommender(l2=500.0),
        GraphFilterRecommender(alpha=0.3, factors=256, seed=seed),
        ContentRecommender(),
    ]


def slate_outcomes(rating: float) -> list[Outcome]:
    if rating >= 3.0:
        return [Outcome("click"), Outcome("watch", 1.0), Outcome("rating", 2.0 * rating)]
    return [Outcome("click"), Outcome("skip")]


def _median_session_minutes(times: np.ndarray) -> float:
    if len(times) < 2:
        return 0.0
    ordered = np.sort(times)
    cuts = np.flatnonzero(np.diff(ordered) > SESSION_GAP_SECONDS) + 1
    lengths = [(s[-1] - s[0]) / 60.0 for s in np.split(ordered, cuts)]
    return float(np.median(lengths))


def build_stream(
    data_dir: Path,
    *,
    window: int = 10,
    k: int = 10,
    depth: int = 100,
    min_item_ratings: int = 5,
    weights: RewardWeights | None = None,
    recommenders: list[ScoringRecommender] | None = None,
    max_users: int | None = None,
    seed: int = 0,
) -> ReplayStream:
    """Fit every arm once and precompute its reward at every step (see the module docstring)."""
    ml = data_dir / "movielens-latest-small"
    log = load_ratings(ml / "ratings.csv", ml / "links.csv")
    users, items, ratings, times = log.users, log.items, log.ratings, log.timestamps
    if max_users is not None:
        keep = users < max_users
        users, items, ratings, times = users[keep], items[keep], ratings[keep], times[keep]
    held = temporal_split(users, times, seed=seed)
    train_counts = np.bincount(items[~held], minlength=len(log.item_ids))
    catalog = np.flatnonzero(train_counts >= min_item_ratings)
    column = np.full(len(log.item_ids), -1)
    column[catalog] = np.arange(len(catalog))
    n_users = int(users.max()) + 1
    train = ~held & (column[items] >= 0)
    matrix = interaction_matrix(
        users[train], column[items[train]], np.ones(int(train.sum())), (n_users, len(catalog))
    )
    genres, years = load_movie_genres_and_years(ml / "movies.csv")
    vectors = fallback_item_vectors(genres, years)
    width = len(next(iter(vectors.values())))
    features = np.stack([vectors.get(int(log.item_ids[i]), np.zeros(width, np.float32)) for i in catalog])
    arms = recommenders or default_arms(seed)
    all_rows = np.arange(n_users)
    rankings = []
    for arm in arms:
        arm.fit(matrix, features)
        top, _ = arm.recommend(all_rows, depth, exclude=matrix)
        rankings.append(np.where(top >= 0, catalog[np.maximum(top, 0)], -1))
    return _steps(
        arms, rankings, log.item_ids, genres, users, items, ratings, times, held, k, window, weights
    )


def _steps(
    arms: list[ScoringRecommender],
    rankings: list[np.ndarray],
    item_ids: np.ndarray,
    genres: dict[int, list[str]],
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    times: np.ndarray,
    held: np.ndarray,
    k: int,
    window: int,
    weights: RewardWeights | None,
) -> ReplayStream:
    steps: list[tuple[float, int, BanditContext, list[float]]] = []
    order = np.lexsort((times, users))
    for user in np.unique(users):
        rows = order[users[order] == user]
        train_rows, held_rows = rows[~held[rows]], rows[held[rows]]
        session = _median_session_minutes(times[train_rows])
        seen = list(items[train_rows])
        consumed: set[int] = set()
        for start in range(0, len(held_rows), window):
            chunk = held_rows[start : start + window]
            rated = {int(items[r]): float(ratings[r]) for r in chunk}
            when = datetime.fromtimestamp(float(times[chunk[0]]), tz=UTC)
            recent = Counter(g for i in seen[-10:] for g in genres.get(int(item_ids[i]), []))
            context = BanditContext(
                hour=when.hour,
                weekday=when.weekday(),
                device="unknown",
                session_minutes=session,
                interactions=len(seen),
                recent_genres=tuple(g for g, _ in recent.most_common(3)),
            )
            rewards = []
            for ranking in rankings:
                slate = [i for i in ranking[user] if i >= 0 and int(i) not in consumed][:k]
                outcomes = [o for i in slate if int(i) in rated for o in slate_outcomes(rated[int(i)])]
                rewards.append(composite_reward(outcomes, weights))
            steps.append((float(times[chunk[0]]), int(user), context, rewards))
            consumed.update(rated)
            seen.extend(items[chunk])
    steps.sort(key=lambda s: (s[0], s[1]))
    return ReplayStream(
        arms=tuple(a.name for a in arms),
        contexts=[s[2] for s in steps],
        users=np.array([s[1] for s in steps], dtype=np.int64),
        rewards=np.array([s[3] for s in steps], dtype=np.float64),
    )
