"""The live CF models: fitted from the interactions table, cached, refitted in the background.

Column j of every matrix is catalog item ``CatalogSnapshot.item_ids[j]``. A fit builds a new
``FittedModels`` and swaps it in with one assignment, so readers always see a complete set
and never wait for a fit that is running.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import func, select
from sqlalchemy.engine import Engine as Database

from ..errors import MetamediaError
from ..ports import CatalogStore, ChangeFeed, VectorCollection
from .als import ALSRecommender
from .base import ScoringRecommender
from .content import normalise_rows
from .ease import EASERecommender
from .graph import GraphFilterRecommender
from .itemknn import ItemKNNRecommender
from .popularity import PopularityRecommender
from .precompute import POOL_ARMS, PrecomputedPools, PrecomputedScores, precompute_pools, precompute_scores
from .rerank import liked_columns
from .serving import SERVING, FusedRecommender, most_interacted
from .storage import interactions

log = logging.getLogger("metamedia.recommend.models")

# Refit once this many interactions arrived since the last fit, or this share of them.
REFIT_MIN_NEW = 200
REFIT_SHARE = 0.05
# EASE inverts an active x active matrix: keep it to the most-interacted items.
EASE_MAX_ITEMS = 6000
TRENDING_HALF_LIFE_DAYS = 30.0
CF_MODELS = ("popularity", "trending", "itemknn", "als", "ease", "graph", "fused")


@dataclass
class CatalogSnapshot:
    """The indexed catalog as aligned arrays: ids, unit content vectors and filterable fields."""

    item_ids: np.ndarray
    position: dict[int, int]
    vectors: np.ndarray
    genres: list[tuple[str, ...]]
    titles: list[str]
    rating: np.ndarray  # vote average 0..10, NaN when unknown
    runtime: np.ndarray  # minutes, NaN when unknown
    media_type: np.ndarray
    prior_popularity: np.ndarray  # the catalog's own popularity field, 0 when unknown
    indexed_count: int
    generation: int = -1  # the catalog generation (ChangeFeed) this snapshot was read at

    def __len__(self) -> int:
        return len(self.item_ids)

    def same_columns(self, other: CatalogSnapshot) -> bool:
        """Whether column j means the same item in both snapshots (true after edits of item fields,
        false once an item was added or removed), so models fitted on one can score the other."""
        return self is other or np.array_equal(self.item_ids, other.item_ids)


def load_catalog(store: CatalogStore, media: VectorCollection, generation: int = -1) -> CatalogSnapshot:
    """Snapshot every catalog item that has a vector in the media collection."""
    indexed = {int(i) for i in media.ids()}
    items = [it for it in store.iter_items() if it.id in indexed]
    items.sort(key=lambda it: it.id)
    ids = np.array([it.id for it in items], dtype=np.int64)
    vectors = normalise_rows(media.get_vectors(ids)) if len(ids) else np.zeros((0, 1), dtype=np.float32)
    nan = float("nan")
    return CatalogSnapshot(
        item_ids=ids,
        position={int(i): p for p, i in enumerate(ids.tolist())},
        vectors=vectors,
        genres=[tuple(it.genres) for it in items],
        titles=[it.title for it in items],
        rating=np.array([it.vote_average if it.vote_average is not None else nan for it in items], float),
        runtime=np.array([it.runtime if it.runtime else nan for it in items], dtype=float),
        media_type=np.array([it.media_type for it in items], dtype=object),
        prior_popularity=np.array([it.popularity or 0.0 for it in items], dtype=np.float32),
        indexed_count=len(indexed),
        generation=generation,
    )


@dataclass
class FittedModels:
    """One consistent set of fitted models over one catalog snapshot and interaction log."""

    catalog: CatalogSnapshot
    user_rows: dict[str, int]
    matrix: sp.csr_matrix  # users x items, confidence (1 + strength) / 2
    models: dict[str, ScoringRecommender]
    trending_scores: np.ndarray
    last_interaction_id: int
    interactions: int
    fitted_at: float
    seconds: float
    errors: dict[str, str] = field(default_factory=dict)
    served_scores: PrecomputedScores | None = None  # the fused model's rows of known users, as of the fit
    pools: dict[str, PrecomputedPools] = field(default_factory=dict)  # other arms' heads of known users
    likes: sp.csc_matrix = field(default_factory=lambda: sp.csc_matrix((0, 0)))  # rerank.liked_columns


def confidence_rows(
    events: list[tuple[int, float, float]], catalog: CatalogSnapshot
) -> tuple[list[int], list[float], list[float]]:
    """Per item the strongest signal (ties: latest) as confidence (1 + s) / 2, with its time.

    ``events`` are (item_id, strength, timestamp) in time order; unknown items are skipped.
    """
    best: dict[int, tuple[float, float]] = {}
    for item_id, strength, when in events:
        column = catalog.position.get(int(item_id))
        if column is None:
            continue
        previous = best.get(column)
        if previous is None or abs(strength) >= abs(previous[0]):
            best[column] = (strength, when)
    columns = [c for c, (s, _) in best.items() if s > -1.0]
    return columns, [(1.0 + best[c][0]) / 2.0 for c in columns], [best[c][1] for c in columns]


def history_row(events: list[tuple[int, float, float]], catalog: CatalogSnapshot) -> sp.csr_matrix:
    """One user's events as a 1 x items confidence row, the input CF models fold in."""
    columns, values, _ = confidence_rows(events, catalog)
    return sp.csr_matrix(
        (np.array(values, np.float32), (np.zeros(len(columns), np.int64), np.array(columns, np.int64))),
        shape=(1, len(catalog)),
        dtype=np.float32,
    )


def strength_row(events: list[tuple[int, float, float]], catalog: CatalogSnapshot) -> sp.csr_matrix:
    """One user's events as a 1 x items row of signed strengths (per item the strongest signal,
    ties: latest), the input the fused model is scored from, as in the evaluation."""
    best: dict[int, float] = {}
    for item_id, strength, _ in events:
        column = catalog.position.get(int(item_id))
        if column is not None and (column not in best or abs(strength) >= abs(best[column])):
            best[column] = strength
    columns = np.fromiter(best.keys(), np.int64, len(best))
    values = np.fromiter(best.values(), np.float32, len(best))
    return sp.csr_matrix(
        (values, (np.zeros(len(columns), np.int64), columns)), shape=(1, len(catalog)), dtype=np.float32
    )


def fit_models(db: Database, catalog: CatalogSnapshot) -> FittedModels:
    """Read every interaction and fit every CF model on it (a failing model is reported, not fatal)."""
    started = time.perf_counter()
    per_user: dict[str, list[tuple[int, float, float]]] = {}
    last_id = 0
    query = select(
        interactions.c.id,
        interactions.c.user_id,
        interactions.c.item_id,
        interactions.c.strength,
        interactions.c.created_at,
    ).order_by(interactions.c.created_at, interactions.c.id)
    count = 0
    with db.connect() as conn:
        for row in conn.execute(query):
            per_user.setdefault(row.user_id, []).append((row.item_id, row.strength, row.created_at))
            last_id = max(last_id, int(row.id))
            count += 1
    user_rows = {user: r for r, user in enumerate(sorted(per_user))}
    rows, cols, vals, times = [], [], [], []
    for user, row_index in user_rows.items():
        columns, values, when = confidence_rows(per_user[user], catalog)
        rows += [row_index] * len(columns)
        cols += columns
        vals += values
        times += when
    shape = (len(user_rows), len(catalog))
    matrix = sp.csr_matrix((np.array(vals, np.float32), (rows, cols)), shape=shape, dtype=np.float32)
    stamps = sp.csr_matrix((np.array(times, np.float64), (rows, cols)), shape=shape, dtype=np.float64)
    matrix.sort_indices()
    stamps.sort_indices()
    models, errors = _fit_all(matrix, stamps, catalog.vectors)
    trending = models.get("trending")
    trending_scores = (
        np.asarray(trending.score(np.zeros(1, np.int64))[0], np.float32)
        if trending is not None and len(user_rows)
        else catalog.prior_popularity.copy()
    )
    fused = models.get("fused")
    served = (
        precompute_scores(fused, per_user, lambda events: strength_row(events, catalog), len(catalog))
        if fused is not None
        else None
    )
    return FittedModels(
        catalog=catalog,
        user_rows=user_rows,
        matrix=matrix,
        models=models,
        trending_scores=trending_scores,
        last_interaction_id=last_id,
        interactions=count,
        fitted_at=time.time(),
        seconds=round(time.perf_counter() - started, 3),
        errors=errors,
        served_scores=served,
        pools={
            name: precompute_pools(
                models[name], per_user, lambda events: history_row(events, catalog), catalog.position,
                len(catalog),
            )  # fmt: skip
            for name in POOL_ARMS
            if name in models
        },
        likes=liked_columns(matrix),
    )


def _fit_all(
    matrix: sp.csr_matrix, stamps: sp.csr_matrix, vectors: np.ndarray | None = None
) -> tuple[dict[str, ScoringRecommender], dict[str, str]]:
    models: dict[str, ScoringRecommender] = {}
    errors: dict[str, str] = {}
    if matrix.nnz == 0:
        return models, {name: "no interactions yet" for name in CF_MODELS}
    item_users = np.diff(matrix.tocsc().indptr)
    active = int((item_users > 0).sum())
    graph_factors = min(128, min(matrix.shape[0], active) - 1)
    builders: dict[str, Any] = {
        "popularity": lambda: PopularityRecommender().fit(matrix),
        "trending": lambda: PopularityRecommender(TRENDING_HALF_LIFE_DAYS).fit(matrix, timestamps=stamps),
        "itemknn": lambda: ItemKNNRecommender(neighbours=100).fit(matrix),
        "als": lambda: ALSRecommender(factors=64, iterations=15, num_threads=1).fit(matrix),
        "ease": lambda: EASERecommender(l2=300.0).fit(most_interacted(matrix, item_users, EASE_MAX_ITEMS)),
        "graph": lambda: GraphFilterRecommender(
            alpha=0.3 if graph_factors >= 1 else 0.0, factors=max(1, graph_factors)
        ).fit(matrix),
        "fused": lambda: FusedRecommender(SERVING).fit(matrix, vectors, timestamps=stamps),
    }
    for name, build in builders.items():
        try:
            models[name] = build()
        except (MetamediaError, ValueError, np.linalg.LinAlgError, MemoryError) as exc:
            errors[name] = str(exc)
            log.warning("recommender %s could not be fitted: %s", name, exc)
    return models, errors


def allowed_mask(
    fitted: FittedModels | None, catalog: Any, genres: list[str], rating_min: float | None,
    runtime_max: int | None, media_type: str | None, consumed: set[int],
) -> np.ndarray:  # fmt: skip
    allowed = np.ones(len(catalog), dtype=bool)
    if rating_min is not None:
        allowed &= np.nan_to_num(catalog.rating, nan=-1.0) >= rating_min
    if runtime_max is not None:
        allowed &= np.nan_to_num(catalog.runtime, nan=1e9) <= runtime_max
    if media_type is not None:
        allowed &= catalog.media_type == media_type
    if genres:
        wanted = set(genres)
        allowed &= np.array([bool(wanted.intersection(g)) for g in catalog.genres], dtype=bool)
    for item in consumed:
        column = catalog.position.get(item)
        if column is not None:
            allowed[column] = False
    return allowed


def top_up(
    scores: np.ndarray, allowed: np.ndarray, content: np.ndarray | None, trending: np.ndarray
) -> np.ndarray:
    """``scores`` with every allowed item they cannot rank (-inf) placed below the lowest one they do:
    the user's ``content`` matches first (by match), then the rest by ``trending``.

    Keeps a filtered pool full when an algorithm ranks only some items (the fused model: the ones
    anyone interacted with); the items it ranks keep their scores and their order.
    """
    ranked = allowed & np.isfinite(scores)
    missing = np.flatnonzero(allowed & ~ranked)
    if not len(missing):
        return scores
    match = np.full(len(missing), -np.inf) if content is None else content[missing].astype(np.float64)
    matched = np.isfinite(match)
    popular = trending[missing].astype(np.float64)
    order = missing[np.lexsort((missing, -popular, -np.where(matched, match, 0.0), ~matched))]
    own = scores[ranked].astype(np.float64)
    low = float(own.min()) if len(own) else 0.0
    span = float(own.max()) - low if len(own) else 0.0
    out = scores.astype(np.float64)
    out[order] = low - (span if span > 0 else 1.0) * np.arange(1, len(order) + 1) / len(order)
    return out.astype(np.float32)


def popularity_scores(name: str, fitted: FittedModels | None, catalog: Any) -> np.ndarray:
    if fitted is None or not fitted.catalog.same_columns(catalog) or "popularity" not in fitted.models:
        return catalog.prior_popularity.astype(np.float32)
    if name == "trending":
        return fitted.trending_scores
    return np.asarray(fitted.models["popularity"].score(np.zeros(1, np.int64))[0], np.float32)


def trending_rank(fitted: FittedModels | None, catalog: Any) -> np.ndarray:
    trend = popularity_scores("trending", fitted, catalog)
    rank = np.empty(len(trend), dtype=np.int64)
    rank[np.argsort(-trend, kind="stable")] = np.arange(len(trend))
    return rank


def settle_heap() -> None:
    """Take what is alive after a fit (models, catalog, caches) out of the cyclic garbage collector's
    walks: a full collection visits every tracked object (~120 ms with the demo's fitted models) and
    stalls whichever request triggers it. Unfrozen first, so the previous fit's cycles are freed."""
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.debug("heap settled in %.1f ms: %d objects frozen", (time.perf_counter() - started) * 1000, gc.get_freeze_count())


class ModelCache:
    """Holds the current catalog snapshot and fitted models; refits in a background thread."""

    def __init__(
        self,
        db: Database,
        store: CatalogStore,
        media: VectorCollection,
        changes: ChangeFeed,
        *,
        refit_min_new: int = REFIT_MIN_NEW,
    ) -> None:
        self.db = db
        self.store = store
        self.media = media
        self.changes = changes
        self.refit_min_new = refit_min_new
        self._catalog: CatalogSnapshot | None = None
        self._fitted: FittedModels | None = None
        self._lock = threading.Lock()
        self._fit_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_check = 0.0

    def catalog(self) -> CatalogSnapshot:
        """The catalog snapshot, reloaded when the catalog generation moved on (any item written,
        updated or deleted, in this process or another one on the same store)."""
        current = self._catalog
        generation = self.changes.generation()
        if current is None or current.generation != generation:
            with self._lock:
                current = self._catalog
                if current is None or current.generation != generation:
                    # read the generation before the rows: a write meanwhile makes the next call reload
                    fresh = load_catalog(self.store, self.media, generation)
                    fitted = self._fitted
                    # an update keeps every item in its column: the fitted models still line up
                    if (
                        fitted is not None
                        and fitted.catalog is current
                        and np.array_equal(fitted.catalog.item_ids, fresh.item_ids)
                    ):
                        self._fitted = replace(fitted, catalog=fresh)
                    current = self._catalog = fresh
        return current

    def fitted(self) -> FittedModels | None:
        """The latest fitted models (None before the first fit); schedules a refit when stale."""
        now = time.monotonic()
        if now - self._last_check >= 1.0:
            self._last_check = now
            if self._stale():
                self.refresh(wait=False)
        return self._fitted

    def refresh(self, *, wait: bool = True) -> FittedModels | None:
        """Refit now; with ``wait=False`` in a background thread (at most one at a time)."""
        if wait:
            self._fit()
            return self._fitted
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._fit, name="metamedia-refit", daemon=True)
                self._thread.start()
        return self._fitted

    def wait(self, timeout: float | None = None) -> None:
        """Block until a running background fit finished."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def wait_done(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a background fit; True when none is running."""
        self.wait(timeout)
        thread = self._thread
        return thread is None or not thread.is_alive()

    def _fit(self) -> None:
        with self._fit_lock:
            try:
                self._fitted = fit_models(self.db, self.catalog())
                log.info("recommenders refitted in %.2f s", self._fitted.seconds)
                settle_heap()
            except Exception:  # a failed background fit keeps serving the previous models
                log.exception("refitting the recommenders failed")

    def _stale(self) -> bool:
        with self.db.connect() as conn:
            newest = conn.execute(select(func.max(interactions.c.id))).scalar() or 0
            if self._fitted is None:
                return True
            if self._catalog is not None and not self._fitted.catalog.same_columns(self._catalog):
                return True
            if newest <= self._fitted.last_interaction_id:
                return False
            new = conn.execute(
                select(func.count()).where(interactions.c.id > self._fitted.last_interaction_id)
            ).scalar()
        threshold = max(self.refit_min_new, REFIT_SHARE * self._fitted.interactions)
        return int(new or 0) >= threshold
