"""Served-path replay: the evaluation's test split asked of ``Engine.recommend`` with default settings.

On a scratch copy of the engine (its catalog and vectors; every interaction, profile and bandit
log removed): the training ratings of every user outside the sample are bulk-imported and the
models fitted, as a running server would have them. Then each sampled user's training ratings
are fed through ``record_interaction`` in time order, and ``recommend(user, 10)`` (algorithm
``auto``, default context) is asked after each of the last ``ask_last`` of them, so the per-user
history, the guard and the caches move as in production. Once every sampled user is fed, the
models are refitted (what the background refit of the default settings does after that many
new interactions) and each user is asked once more at the split point: that list is scored with
NDCG@10 against the user's held-out positives, exactly as the offline evaluation scores its
lists, and compared with the offline best on the same users.

The sample keeps the replay affordable (a request is tens of milliseconds on the demo catalog):
``users`` test users drawn with the seed, all of their training history fed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete

from ..recommend.storage import insert_ratings, interactions, movie_item_mapping, preferences, users
from .data import RatingsLog
from .metrics import ndcg_at_k, paired_bootstrap_ratio
from .protocol import CUTOFF, Phase

SAMPLE_USERS = 200
ASK_LAST = 3
PREFIX = "replay-"


def _reset(engine: Any) -> None:
    engine.bandit.forget_history()
    with engine.store.engine.begin() as conn:
        for table in (interactions, preferences, users):
            conn.execute(delete(table))


@dataclass
class Replay:
    """The fed state of one replay: who was sampled, their held-out positives, how items map."""

    recs: Any
    chosen: np.ndarray  # positions in phase.users
    names: list[str]  # the sampled users' ids in the engine
    wanted: list[set[int]]  # their held-out positives (log item indices)
    index_of_item: dict[int, int]  # catalog item id -> log item index
    info: dict[str, Any] = field(default_factory=dict)


def served_replay(
    engine: Any, log: RatingsLog, phase: Phase, held_out: np.ndarray, offline_ndcg: np.ndarray,
    links_csv: Path, *, sample: int = SAMPLE_USERS, ask_last: int = ASK_LAST, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Run the replay (see the module docstring) on ``engine``, which it changes: pass a scratch engine.

    ``phase`` is the offline test phase and ``offline_ndcg`` the offline best's per-user NDCG@10
    over ``phase.users``; ``held_out`` marks the test ratings of the log.
    """
    started = time.perf_counter()
    replay = feed_replay(engine, log, phase, held_out, links_csv, sample=sample, ask_last=ask_last, seed=seed)
    replay.recs.refresh(wait=True)
    out = score_replay(replay, offline_ndcg[replay.chosen], seed=seed)
    return {**out, "seconds": round(time.perf_counter() - started, 1)}


def feed_replay(
    engine: Any, log: RatingsLog, phase: Phase, held_out: np.ndarray,
    links_csv: Path, *, sample: int = SAMPLE_USERS, ask_last: int = ASK_LAST, seed: int = 0,
) -> Replay:  # fmt: skip
    """Bulk-import the others, fit, feed the sampled users through ``record_interaction`` (not refitted)."""
    _reset(engine)
    recs = engine.recs
    movies = {int(m) for m in log.item_ids}
    mapping = movie_item_mapping(engine.store, movies, links_csv)
    item_of_index = np.array([mapping.get(int(m), -1) for m in log.item_ids], dtype=np.int64)
    index_of_item = {int(i): p for p, i in enumerate(item_of_index.tolist()) if i >= 0}
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(phase.users), min(sample, len(phase.users)), replace=False))
    sampled = phase.users[chosen]
    is_sampled = np.isin(log.users, sampled)
    train = ~held_out
    bulk = np.flatnonzero(train & ~is_sampled & (item_of_index[log.items] >= 0))
    rows = [
        (int(log.user_ids[log.users[r]]), int(log.item_ids[log.items[r]]), float(log.ratings[r]), int(log.timestamps[r]))
        for r in bulk
    ]  # fmt: skip
    insert_ratings(recs.db, rows, {int(m): int(i) for m, i in mapping.items()}, PREFIX)
    recs.refresh(wait=True)
    asked, latencies = 0, []
    fed = 0
    for user in sampled.tolist():
        mine = np.flatnonzero((log.users == user) & train)
        mine = mine[np.lexsort((mine, log.timestamps[mine]))]
        name = f"{PREFIX}{int(log.user_ids[user])}"
        for step, r in enumerate(mine.tolist()):
            item = int(item_of_index[log.items[r]])
            if item < 0:
                continue
            recs.record_interaction(
                name, item, "rating", value=float(log.ratings[r]), scale="five",
                timestamp=float(log.timestamps[r]), idempotency_key=f"replay:{r}",
            )  # fmt: skip
            fed += 1
            if step >= len(mine) - ask_last:
                tick = time.perf_counter()
                recs.recommend(name, CUTOFF)
                latencies.append(time.perf_counter() - tick)
                asked += 1
    relevant = phase.relevant[chosen]
    ms = np.array(latencies) * 1000.0 if latencies else np.zeros(1)
    return Replay(
        recs, chosen, [f"{PREFIX}{int(log.user_ids[user])}" for user in sampled.tolist()],
        [set(relevant[p].indices.tolist()) for p in range(len(sampled))], index_of_item,
        {
            "users": int(len(sampled)), "fed_interactions": fed, "bulk_imported": len(rows),
            "requests_while_feeding": asked, "catalog_items_linked": int((item_of_index >= 0).sum()),
            "request_ms_p50": round(float(np.percentile(ms, 50)), 2),
            "request_ms_p99": round(float(np.percentile(ms, 99)), 2),
        },
    )  # fmt: skip


def score_replay(replay: Replay, offline: np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """Ask every sampled user at the split point and score the lists (``offline``: the offline
    best's NDCG@10 of the same users, in the same order)."""
    recs, names, wanted, index_of_item = replay.recs, replay.names, replay.wanted, replay.index_of_item
    served_ndcg, arm_of, unrated_served = _score_lists(recs, names, wanted, index_of_item, "auto")
    # Where the served lists lose, on the same users and the same fitted state: the same request
    # without the bandit (the served model itself, so no exploration), and the served list with the
    # catalog titles outside the ratings data dropped (asked for 2k, the first k rated ones kept).
    unexplored = _score_lists(recs, names, wanted, index_of_item, "fused")[0]
    rated_only = _score_lists(recs, names, wanted, index_of_item, "auto", rated_only=True)[0]
    arms: dict[str, int] = {}
    for arm in arm_of:
        arms[arm] = arms.get(arm, 0) + 1
    ratio = float(served_ndcg.mean() / offline.mean()) if offline.mean() > 0 else None
    return {
        **replay.info,
        "served_ndcg@10": float(served_ndcg.mean()),
        "offline_best_ndcg@10_same_users": float(offline.mean()),
        "ratio": ratio,
        "ratio_95ci": list(paired_bootstrap_ratio(served_ndcg, offline, seed=seed)) if ratio else None,
        "served_arms": arms,
        "ndcg@10_by_arm": {
            arm: [
                float(served_ndcg[np.array(arm_of) == arm].mean()),
                float(offline[np.array(arm_of) == arm].mean()),
            ]
            for arm in arms
        },
        "served_outside_ratings_share": unrated_served / max(1, CUTOFF * len(names)),
        "diagnosis_ndcg@10": {
            "served (auto)": float(served_ndcg.mean()),
            "fused asked explicitly (no exploration)": float(unexplored.mean()),
            "served list without titles outside the ratings data": float(rated_only.mean()),
            "offline best": float(offline.mean()),
        },
    }


def _score_lists(
    recs: Any, names: list[str], wanted: list[set[int]], index_of_item: dict[int, int], algorithm: str,
    *, rated_only: bool = False,
) -> tuple[np.ndarray, list[str], int]:  # fmt: skip
    """NDCG@10 of each user's list from ``recs.recommend``, the arm that served it, and how many
    served titles are outside the ratings data (``rated_only``: those are dropped from a longer list)."""
    ndcg = np.zeros(len(names))
    arm_of: list[str] = []
    unrated = 0
    for position, name in enumerate(names):
        result = recs.recommend(name, 2 * CUTOFF if rated_only else CUTOFF, algorithm=algorithm)
        arm_of.append(str(result["arm"] or result["algorithm"]))
        served = [index_of_item.get(int(row["id"]), -1) for row in result["results"]]
        unrated += sum(i < 0 for i in served)
        served = [i for i in served if i >= 0][:CUTOFF] if rated_only else served
        hits = np.array(
            [[i in wanted[position] for i in served] + [False] * (CUTOFF - len(served))], dtype=bool
        )
        ndcg[position] = ndcg_at_k(hits, np.array([len(wanted[position])]), CUTOFF)[0]
    return ndcg, arm_of, unrated
