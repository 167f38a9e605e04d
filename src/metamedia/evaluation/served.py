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
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete

from ..recommend.storage import insert_ratings, interactions, movie_item_mapping, preferences, users
from .data import RatingsLog
from .metrics import ndcg_at_k, paired_bootstrap_ratio
from .protocol import CUTOFF, Phase

SAMPLE_USERS = 60
ASK_LAST = 3
PREFIX = "replay-"


def _reset(engine: Any) -> None:
    engine.bandit.forget_history()
    with engine.store.engine.begin() as conn:
        for table in (interactions, preferences, users):
            conn.execute(delete(table))


def served_replay(
    engine: Any, log: RatingsLog, phase: Phase, held_out: np.ndarray, offline_ndcg: np.ndarray,
    links_csv: Path, *, sample: int = SAMPLE_USERS, ask_last: int = ASK_LAST, seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Run the replay (see the module docstring) on ``engine``, which it changes: pass a scratch engine.

    ``phase`` is the offline test phase and ``offline_ndcg`` the offline best's per-user NDCG@10
    over ``phase.users``; ``held_out`` marks the test ratings of the log.
    """
    started = time.perf_counter()
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
    recs.refresh(wait=True)
    served_ndcg = np.zeros(len(sampled))
    arms: dict[str, int] = {}
    arm_of: list[str] = []
    unrated_served = 0  # catalog titles outside the ratings data: never a hit, whatever their merit
    relevant = phase.relevant[chosen]
    for position, user in enumerate(sampled.tolist()):
        result = recs.recommend(f"{PREFIX}{int(log.user_ids[user])}", CUTOFF)
        arm_of.append(str(result["arm"] or result["algorithm"]))
        arms[arm_of[-1]] = arms.get(arm_of[-1], 0) + 1
        served = [index_of_item.get(int(row["id"]), -1) for row in result["results"]]
        unrated_served += sum(i < 0 for i in served)
        wanted = set(relevant[position].indices.tolist())
        hits = np.array([[i in wanted for i in served] + [False] * (CUTOFF - len(served))], dtype=bool)
        served_ndcg[position] = ndcg_at_k(hits, np.array([len(wanted)]), CUTOFF)[0]
    offline = offline_ndcg[chosen]
    ratio = float(served_ndcg.mean() / offline.mean()) if offline.mean() > 0 else None
    ms = np.array(latencies) * 1000.0 if latencies else np.zeros(1)
    return {
        "users": int(len(sampled)),
        "fed_interactions": fed,
        "bulk_imported": len(rows),
        "requests_while_feeding": asked,
        "served_ndcg@10": float(served_ndcg.mean()),
        "offline_best_ndcg@10_same_users": float(offline.mean()),
        "ratio": ratio,
        "ratio_95ci": list(paired_bootstrap_ratio(served_ndcg, offline, seed=seed)) if ratio else None,
        "served_arms": arms,
        "ndcg@10_by_arm": {
            arm: [float(served_ndcg[np.array(arm_of) == arm].mean()), float(offline[np.array(arm_of) == arm].mean())]
            for arm in arms
        },
        "served_outside_ratings_share": unrated_served / max(1, CUTOFF * len(sampled)),
        "catalog_items_linked": int((item_of_index >= 0).sum()),
        "request_ms_p50": round(float(np.percentile(ms, 50)), 2),
        "request_ms_p99": round(float(np.percentile(ms, 99)), 2),
        "seconds": round(time.perf_counter() - started, 1),
    }
