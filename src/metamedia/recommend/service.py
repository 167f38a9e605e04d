"""RecommendService: users, interactions, online preference vectors and the recommendation pipeline.

Pipeline of one request: candidates from one algorithm (chosen by the bandit for "auto") among
the items the filters and the user's stated limits allow (topped up from content and trending
when the algorithm ranks too few of them), optionally fused with a query's search results; then
consumed items and business rules out, MMR diversity, "why" explanations, and the agent-memory
reranker (user constraints and the strategies memory trusts) with its reasons. CF models are
fitted in the background (models.ModelCache); a request only folds the user's current history
into them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine as Database

from ..domain.feedback import outcome_reward
from ..domain.limits import RECOMMEND_MAX_K, check_k
from ..errors import Forbidden, InvalidInput, ItemNotFound
from ..memory.rules import Candidate as MemoryCandidate
from ..models import MediaItem
from ..ports import CatalogStore, ChangeFeed, EventSink, Search, VectorCollection
from ..search.filters import resolve_genres
from ..search.pipeline import result_row
from .feedback import NOT_APPLICABLE, FeedbackHub, StoredInteraction
from .hybrid import reciprocal_rank_fusion, weighted_fusion
from .importer import import_ratings
from .memory_rerank import memory_rerank, session_context
from .models import (
    FittedModels,
    ModelCache,
    allowed_mask,
    history_row,
    popularity_scores,
    strength_row,
    top_up,
    trending_rank,
)
from .ports import AlgorithmPicker, ItemSource, LoggedChoice, MemoryFeedback
from .preference import PreferenceEvent
from .preferences import blocked_mask, user_limits
from .profiles import ProfileMixin
from .registry import ALGORITHM_NAMES, ARM_ALGORITHM
from .rerank import Candidate, Constraints, Explainer, HistoryItem, co_liked_reasons, rerank
from .serving import SERVING
from .signals import RATING_SCALES, Signal, SignalKind, signal_strength
from .storage import (
    check_context,
    check_finite,
    check_key,
    check_user_id,
    create_tables,
    ensure_users,
    interaction_by_key,
    interactions,
    save_profile,
    user_events,
    with_time,
)

log = logging.getLogger("metamedia.recommend")

Progress = Callable[[str, int, int], None]
KINDS = tuple(k.value for k in SignalKind)
ALGORITHMS = ALGORITHM_NAMES
HYBRID_WEIGHTS = {"ease": 1.0, "graph": 0.8, "itemknn": 0.5, "als": 0.5, "content": 0.6, "trending": 0.2}
MAX_K = RECOMMEND_MAX_K
COLLABORATIVE = {"fused", "itemknn", "als", "ease", "graph"}  # explained by who else liked what
TRENDING_TOP = 50  # items ranked this high by trending are "popular this week"
MEMORY_SPARE = 10  # extra items handed to memory, which may drop some
POOL_CACHE_USERS = 5000  # users whose scored candidate pool is kept (~50 ids and scores each)
IMPORT_BATCH = 5000

MAX_TIMESTAMP = 4_102_444_800.0  # 2100-01-01 UTC
MAX_WATCH_SECONDS = 10_000_000  # about 115 days


class RecommendService(ProfileMixin):
    """The engine's recommendation layer (``engine.recs``), wired by the engine with its ports.

    ``bandit`` and ``memory`` are callables because both open on first use (creating their tables).
    """

    def __init__(
        self,
        db: Database,
        store: CatalogStore,
        media: VectorCollection,
        *,
        changes: ChangeFeed,
        search: Search,
        bandit: Callable[[], AlgorithmPicker],
        memory: Callable[[], MemoryFeedback],
        publish: EventSink,
        items: ItemSource | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.media = media
        self.search = search
        self._bandit = bandit
        self._memory = memory
        self.publish = publish
        self.items = items if items is not None else store  # result rows; writes validate against `store`
        create_tables(self.db)
        self.models = ModelCache(db, store, media, changes)
        # One interaction in, handed to each learner in turn (profile, bandit + memory, events).
        self.feedback = FeedbackHub()
        self.feedback.add("profile", self._profile_listener)
        self.feedback.add("reward", self._reward_listener)
        self.feedback.add(None, self._event_listener)
        self._profile_lock = threading.Lock()
        # Per user, the scored candidate pool of their last request, keyed by everything it depends
        # on (their history, the fitted models, the catalog generation, the filters); a write drops it.
        self._pools: OrderedDict[str, tuple[Any, np.ndarray, np.ndarray]] = OrderedDict()
        self._pool_lock = threading.Lock()
        self._ranks: tuple[Any, Any, np.ndarray] | None = None

    # ----- interactions ------------------------------------------------------------------------
    def record_interaction(
        self,
        user_id: str,
        item_id: int,
        kind: str,
        *,
        value: float | None = None,
        completion: float | None = None,
        watch_seconds: float | None = None,
        context: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        timestamp: float | None = None,
        decision_id: str | None = None,
        scale: str | None = None,
    ) -> dict[str, Any]:
        """Validate and store one interaction, then learn from it (profile, bandit, memory, events).

        ``scale`` ("five" = 0.5-5 stars, "ten" = 1-10) defaults to "ten" for ratings above 5.
        A retried event (same user and ``idempotency_key``) returns the stored one with
        ``duplicate: True`` and changes nothing.
        """
        user = check_user_id(user_id)
        item = self._item(item_id)
        if kind not in KINDS:
            raise InvalidInput(f"unknown interaction kind {kind!r}; use one of {list(KINDS)}")
        for name, number in (("value", value), ("completion", completion), ("watch_seconds", watch_seconds)):
            check_finite(name, number)
        if value is not None and kind != "rating":
            raise InvalidInput(f"value is only for ratings, not {kind!r}")
        if watch_seconds is not None and not 0 <= watch_seconds <= MAX_WATCH_SECONDS:
            raise InvalidInput(f"watch_seconds must be within 0..{MAX_WATCH_SECONDS}, got {watch_seconds}")
        if value is not None and not -100.0 <= value <= 100.0:
            raise InvalidInput(f"a rating value must be within the rating scale, got {value}")
        rating_scale = None
        if kind == "rating":
            if value is None:
                raise InvalidInput("a rating needs a value")
            rating_scale = scale or ("ten" if value > 5.0 else "five")
            if rating_scale not in RATING_SCALES:
                raise InvalidInput(f"unknown rating scale {rating_scale!r}; use 'five' or 'ten'")
        signal = Signal(
            SignalKind(kind), value=value, completion=completion, watch_seconds=watch_seconds,
            runtime_seconds=item.runtime * 60.0 if item.runtime else None, scale=rating_scale or "five",
        )  # fmt: skip
        strength = signal_strength(signal)
        if kind == "watch" and completion is None:
            completion = min(1.0, float(watch_seconds or 0.0) / (float(item.runtime or 1) * 60.0))
        if completion is not None and not 0.0 <= completion <= 1.0:
            raise InvalidInput(f"completion must be in [0, 1], got {completion}")
        ctx = check_context(context)
        key = check_key(idempotency_key)
        when = time.time() if timestamp is None else check_finite("timestamp", timestamp)
        if not 0.0 <= when <= MAX_TIMESTAMP:
            raise InvalidInput(
                f"timestamp must be Unix seconds between 0 and {MAX_TIMESTAMP:.0f} (year 2100)"
            )
        decision = self._decision(decision_id) if decision_id is not None else None
        if decision is not None and str(decision.user_id) != user:
            # One user's interaction cannot answer (and credit the reward of) another user's recommendation.
            raise Forbidden(
                f"decision {decision_id!r} was issued to another user", {"decision_id": decision_id}
            )
        now = time.time()
        row = {
            "user_id": user, "item_id": item.id, "kind": kind, "value": value, "scale": rating_scale,
            "completion": completion, "watch_seconds": watch_seconds, "strength": strength, "context": ctx,
            "idempotency_key": key, "decision_id": decision_id, "created_at": when,
        }  # fmt: skip
        try:
            with self.db.begin() as conn:
                ensure_users(conn, [user], now)
                new_id = conn.execute(interactions.insert().values(**row)).inserted_primary_key[0]  # type: ignore[index]
        except sa_exc.IntegrityError:
            stored = self._by_key(user, key)
            if stored is None:
                raise
            return {**stored, "duplicate": True}
        with self._pool_lock:
            self._pools.pop(user, None)
        stored = {**row, "id": int(new_id), "timestamp": when, "duplicate": False}
        stored.pop("created_at")
        interaction = StoredInteraction(
            user, item, kind, strength, value, rating_scale, completion, ctx, when, decision, stored
        )
        stored.update(self.feedback.dispatch(interaction))
        return stored

    def _profile_listener(self, i: StoredInteraction) -> dict[str, Any]:
        return self._learn(i.user_id, i.item, i.kind, i.strength, i.completion, i.timestamp)

    def _reward_listener(self, i: StoredInteraction) -> object:
        if i.decision is None:
            return NOT_APPLICABLE
        return self._reward(i.decision, i.user_id, i.item, i.kind, i.value, i.scale, i.completion, i.context)

    def _event_listener(self, i: StoredInteraction) -> None:
        self.publish("interaction", {k: i.row[k] for k in ("id", "user_id", "item_id", "kind", "strength")})

    def _learn(
        self, user: str, item: MediaItem, kind: str, strength: float, completion: float | None, when: float
    ) -> dict[str, Any]:
        """Move the user's preference vector (milliseconds: one vector read, one row write)."""
        vector = self._item_vector(item.id)
        with self._profile_lock, self.db.begin() as conn:
            stored = self._load_profile(conn, user, exclude_latest=True)
            event = PreferenceEvent(item.id, strength, tuple(item.genres), kind, completion, when)
            if vector is not None:
                stored.profile.update(vector, strength, event)
            stored.counts[kind] = stored.counts.get(kind, 0) + 1
            save_profile(conn, user, stored.profile, stored.counts, time.time())
        return {
            "confidence": round(stored.profile.confidence, 4),
            "evidence": round(stored.profile.evidence, 4),
        }

    def _reward(
        self, decision: LoggedChoice, user: str, item: MediaItem, kind: str, value: float | None,
        scale: str | None, completion: float | None, context: dict[str, Any],
    ) -> float | None:  # fmt: skip
        """Join the bandit reward and, for skips and watches of a served item, teach agent memory."""
        reward = None
        earned = outcome_reward(kind, value=value, scale=scale, completion=completion)
        if earned is not None:
            outcome, number = earned
            reward = float(self._bandit().record_reward(decision.id, [{"kind": outcome, "value": number}]))
        if kind in ("skip", "watch"):
            info = (decision.served_detail or {}).get(str(item.id), {})  # logged, whichever process served
            candidate = MemoryCandidate(
                item_id=str(item.id), score=float(info.get("score", 0.5)), genres=list(item.genres),
                runtime=item.runtime, vote_average=item.vote_average, year=item.year, title=item.title,
                strategy_ids=list(info.get("strategy_ids", [])),
            )  # fmt: skip
            self._memory().record_feedback(
                user_id=user, candidate=candidate, action=kind,
                completion=0.0 if kind == "skip" else float(completion or 0.0),
                context={**dict(decision.context or {}), **context},
                recommended=[str(i) for i in decision.served_items or []],
            )  # fmt: skip
        return reward

    # ----- recommendations --------------------------------------------------------------------
    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        algorithm: str = "auto",
        context: dict[str, Any] | None = None,
        genres: list[str] | None = None,
        rating_min: float | None = None,
        runtime_max: int | None = None,
        media_type: str | None = None,
        query: str | None = None,
        similar_to: int | None = None,
    ) -> dict[str, Any]:
        """The user's k best unseen items, each with "reasons"; see the module docstring.

        ``similar_to`` fuses the ranking with the items most like that one (a "because you liked" row).
        """
        started = time.perf_counter()
        user = check_user_id(user_id)
        check_k(k, MAX_K)
        if algorithm not in ALGORITHMS:
            raise InvalidInput(f"unknown algorithm {algorithm!r}; use one of {list(ALGORITHMS)}")
        wanted_genres = resolve_genres(genres)
        if rating_min is not None and not 0.0 <= check_finite("rating_min", rating_min) <= 10.0:
            raise InvalidInput(f"rating_min must be in 0..10, got {rating_min}")
        if runtime_max is not None and not 1 <= runtime_max <= 1000:
            raise InvalidInput(f"runtime_max must be in 1..1000 minutes, got {runtime_max}")
        if media_type is not None and media_type not in ("movie", "tv"):
            raise InvalidInput(f"media_type must be 'movie' or 'tv', got {media_type!r}")
        if query is not None and (not query.strip() or len(query) > 500):
            raise InvalidInput("query must be 1..500 characters")
        seed = self._item(similar_to).id if similar_to is not None else None
        stated = check_context(context)
        ctx = with_time(stated)
        limits = user_limits(self._memory().users, user)
        if limits.max_runtime is not None:
            runtime_max = min(runtime_max or limits.max_runtime, limits.max_runtime)
        catalog = self.models.catalog()
        fitted = self.models.fitted()
        events = self._events(user)
        consumed = {item for item, *_ in events}
        cold = not any(strength > 0 for _, strength, _, _ in events)
        decision = None
        effective = algorithm
        if cold:
            effective = "trending"
        if algorithm == "auto":
            arms = ["popularity"] if cold else self._runnable_arms(fitted)
            bandit_ctx: dict[str, Any] = {
                f: ctx[f] for f in ("hour", "weekday", "device", "session_minutes") if f in ctx
            }
            decision = self._bandit().choose(user, {**bandit_ctx, "interactions": len(events)}, arms)
            effective = "trending" if cold else ARM_ALGORITHM[decision.arm]
        pool = max(50, 4 * k)
        key = (
            effective, len(events), events[-1][2] if events else 0.0, fitted.fitted_at if fitted else 0.0,
            catalog.generation, tuple(wanted_genres), rating_min, runtime_max, media_type, pool,
            tuple(sorted(limits.blocked_genres)),
        )  # fmt: skip
        cacheable = query is None and seed is None
        cached = self._pools.get(user) if cacheable else None
        if cached is not None and cached[0] == key:
            order, pool_scores = cached[1], cached[2]
        else:
            order, pool_scores = self._pool(
                effective, user, fitted, catalog, events, consumed, pool, (query, seed),
                (wanted_genres, rating_min, runtime_max, media_type), limits.blocked_genres,
            )  # fmt: skip
            if cacheable:
                self._remember_pool(user, (key, order, pool_scores))
        ranks = self._trending_rank(fitted, catalog)
        top_trending = min(TRENDING_TOP, max(1, len(catalog) // 20))
        candidates = [
            Candidate(
                item_id=int(catalog.item_ids[j]), score=float(score), vector=catalog.vectors[j],
                genres=catalog.genres[j], title=catalog.titles[j],
                rating=None if math.isnan(catalog.rating[j]) else float(catalog.rating[j]),
                runtime=None if math.isnan(catalog.runtime[j]) else int(catalog.runtime[j]),
                media_type=str(catalog.media_type[j]), trending=bool(ranks[j] < top_trending),
            )
            for j, score in zip(order.tolist(), pool_scores.tolist(), strict=True)
        ]  # fmt: skip
        profile = self._profile_for_reads(user, catalog)
        history = self._history(events, catalog)
        co_liked = {}
        if effective in COLLABORATIVE and fitted is not None:
            co_liked = co_liked_reasons(
                fitted.likes, fitted.catalog.position, history, [c.item_id for c in candidates]
            )
        explainer = Explainer(history, profile, co_liked=co_liked)
        constraints = Constraints(
            min_rating=rating_min, max_runtime=runtime_max, media_types=(media_type,) if media_type else None
        )
        ranked = rerank(
            candidates, k + MEMORY_SPARE, consumed=consumed, constraints=constraints,
            diversity="mmr", mmr_lambda=SERVING.mmr_lambda, explainer=explainer,
        )  # fmt: skip
        final, notes, strategy_ids = memory_rerank(
            self._memory().reranker, user, ranked, catalog, session_context(ctx, stated), k
        )
        items = self.items.get_items([item_id for item_id, _, _ in final])
        results = [result_row(items[i], score, reasons) for i, score, reasons in final if i in items]
        served = [r["id"] for r in results]
        if decision is not None:
            detail = {str(i): {"score": s, "strategy_ids": strategy_ids.get(i, [])} for i, s, _ in final}
            self._bandit().attach_items(decision.id, served, detail)
        return {
            "user_id": user,
            "algorithm": effective,
            "requested_algorithm": algorithm,
            "arm": decision.arm if decision else None,
            "decision_id": decision.id if decision else None,
            "propensity": decision.propensity if decision else None,
            "exploring": decision.exploring if decision else False,
            "cold_start": cold,
            "results": results,
            "notes": notes,
            "models": {"fitted_at": fitted.fitted_at, "interactions": fitted.interactions}
            if fitted
            else None,
            "took_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    def _pool(
        self, effective: str, user: str, fitted: FittedModels | None, catalog: Any,
        events: list[tuple[int, float, float, str]], consumed: set[int], pool: int,
        steer: tuple[str | None, int | None], filters: tuple[list[str], float | None, int | None, str | None],
        blocked: frozenset[str],
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The ``pool`` best allowed columns of this algorithm for the user, best first, with their scores."""
        genres, rating_min, runtime_max, media_type = filters
        query, seed = steer
        allowed = allowed_mask(fitted, catalog, genres, rating_min, runtime_max, media_type, consumed)
        allowed &= ~blocked_mask(catalog.genres, blocked)
        stored = fitted.pools.get(effective) if fitted is not None and query is None and seed is None else None
        if stored is not None and fitted is not None and fitted.catalog.same_columns(catalog):
            ready = stored.pool(user, events, allowed, pool)  # None: their history or the filters outgrew it
            if ready is not None:
                return ready
        scores = self._scores(effective, user, fitted, catalog, events, allowed)
        if int((allowed & np.isfinite(scores)).sum()) < pool:
            # the fused model cannot rank items nobody interacted with, content only its nearest hits
            content = self._content(user, catalog, allowed) if effective != "content" else None
            scores = top_up(scores, allowed, content, popularity_scores("trending", fitted, catalog))
        if query is not None or seed is not None:
            scores = self._with_query(
                scores, query, catalog, allowed, genres, rating_min, runtime_max, media_type, seed
            )
        scores = np.where(allowed, scores, -np.inf)
        top = np.argpartition(-scores, pool - 1)[:pool] if pool < len(scores) else np.arange(len(scores))
        order = top[np.lexsort((top, -scores[top]))]
        order = order[np.isfinite(scores[order])]
        return order, scores[order]

    def _remember_pool(self, user: str, entry: tuple[Any, np.ndarray, np.ndarray]) -> None:
        with self._pool_lock:
            self._pools[user] = entry
            self._pools.move_to_end(user)
            while len(self._pools) > POOL_CACHE_USERS:
                self._pools.popitem(last=False)

    def _trending_rank(self, fitted: FittedModels | None, catalog: Any) -> np.ndarray:
        memo = self._ranks
        if memo is None or memo[0] is not fitted or memo[1] is not catalog:
            memo = self._ranks = (fitted, catalog, trending_rank(fitted, catalog))
        return memo[2]

    def _runnable_arms(self, fitted: FittedModels | None) -> list[str]:
        active = self._bandit().active_arms()
        models = fitted.models if fitted else {}
        runnable = [a for a in active if ARM_ALGORITHM.get(a) in models or ARM_ALGORITHM.get(a) == "content"]
        return runnable or ["content"]

    def _scores(
        self, algorithm: str, user: str, fitted: FittedModels | None, catalog: Any,
        events: list[tuple[int, float, float, str]], allowed: np.ndarray,
    ) -> np.ndarray:  # fmt: skip
        """One score per catalog item (higher is better; -inf: this algorithm cannot rank it)."""
        if algorithm in ("popularity", "trending"):
            return popularity_scores(algorithm, fitted, catalog)
        if algorithm == "content":
            return self._content(user, catalog, allowed)
        if algorithm == "hybrid":
            parts, weights = [], []
            for name, weight in HYBRID_WEIGHTS.items():
                usable = name in ("content", "trending") or (fitted is not None and name in fitted.models)
                part = self._scores(name, user, fitted, catalog, events, allowed) if usable else None
                if part is not None and np.isfinite(part).any():
                    parts.append(
                        np.where(np.isfinite(part), part, np.nanmin(part[np.isfinite(part)]))[None, :]
                    )
                    weights.append(weight)
            return (
                weighted_fusion(parts, weights, allowed)[0]
                if parts
                else popularity_scores("trending", fitted, catalog)
            )
        if fitted is None or algorithm not in fitted.models:
            why = fitted.errors.get(algorithm, "not fitted yet") if fitted else "models not fitted yet"
            raise InvalidInput(f"algorithm {algorithm!r} is not available: {why}")
        if not fitted.catalog.same_columns(catalog):
            raise InvalidInput("the catalog changed since the models were fitted; try again after refresh")
        if algorithm == "fused" and fitted.served_scores is not None:
            ready = fitted.served_scores.get(user, events)  # their history is what the fit scored
            if ready is not None:
                return ready.copy()
        triples = [(i, s, t) for i, s, t, _ in events]
        history = strength_row(triples, catalog) if algorithm == "fused" else history_row(triples, catalog)
        return np.asarray(fitted.models[algorithm].score(np.zeros(1, np.int64), history)[0], dtype=np.float32)

    def _content(self, user: str, catalog: Any, allowed: np.ndarray) -> np.ndarray:
        """Preference vector -> vector search over the media collection (any item, interacted or not)."""
        profile = self._profile_for_reads(user, catalog)
        scores = np.full(len(catalog), -np.inf, dtype=np.float32)
        if profile is None or not np.any(profile.vector):
            return scores
        hits = self.media.search(profile.direction(), k=min(len(catalog), 200 + int((~allowed).sum())))
        for hit in hits:
            column = catalog.position.get(int(hit.id))
            if column is not None:
                scores[column] = hit.score
        return scores

    def _with_query(
        self, scores: np.ndarray, query: str | None, catalog: Any, allowed: np.ndarray, genres: list[str],
        rating_min: float | None, runtime_max: int | None, media_type: str | None, seed: int | None = None,
    ) -> np.ndarray:  # fmt: skip
        """Fuse the algorithm's ranking with the query's search results, or with the items nearest
        to `seed` in the media index (RRF, the query or seed weighted higher)."""
        if seed is not None:
            column = catalog.position.get(seed)
            hits = self.media.search(catalog.vectors[column], k=101) if column is not None else []
            found_ids = [int(h.id) for h in hits if int(h.id) != seed]
        else:
            found = self.search(
                query or "", k=50, genres=genres or None, rating_min=rating_min, runtime_max=runtime_max,
                media_type=media_type, diversity=False,
            )  # fmt: skip
            found_ids = [int(row["id"]) for row in found["results"]]
        relevance = np.full(len(catalog), -np.inf, dtype=np.float32)
        for rank, item_id in enumerate(found_ids):
            column = catalog.position.get(item_id)
            if column is not None:
                relevance[column] = -rank
        fused = reciprocal_rank_fusion(
            [np.where(allowed, scores, -np.inf)[None, :], relevance[None, :]], [0.5, 1.0], depth=200
        )[0]
        return np.where(fused > 0, fused, -np.inf)

    def _history(self, events: list[tuple[int, float, float, str]], catalog: Any) -> list[HistoryItem]:
        liked = [(i, s) for i, s, _, kind in events[-50:] if s >= 0.3 and kind not in ("view", "click")]
        out = []
        for item_id, strength in liked:
            column = catalog.position.get(item_id)
            if column is not None:
                out.append(HistoryItem(item_id, catalog.titles[column], catalog.vectors[column], strength))
        return out

    def refresh(self, *, wait: bool = True) -> dict[str, Any]:
        """Refit the CF models on all interactions now (``wait=False``: in the background)."""
        fitted = self.models.refresh(wait=wait)
        if fitted is None:
            return {"fitted": False}
        return {
            "fitted": True, "interactions": fitted.interactions, "users": len(fitted.user_rows),
            "items": len(fitted.catalog), "seconds": fitted.seconds, "models": sorted(fitted.models),
            "errors": fitted.errors,
        }  # fmt: skip

    # ----- MovieLens import -------------------------------------------------------------------
    def import_ratings(
        self, ratings_csv: Path, links_csv: Path | None = None, *, progress: Progress | None = None,
        user_prefix: str = "ml-",
    ) -> dict[str, Any]:  # fmt: skip
        """MovieLens ratings as interactions; see metamedia.recommend.importer.import_ratings."""
        return import_ratings(
            self.db, self.store, self.rebuild_profile, lambda: self.models.refresh(wait=False),
            Path(ratings_csv), links_csv, progress=progress, user_prefix=user_prefix,
        )  # fmt: skip

    def _item(self, item_id: int) -> MediaItem:
        if isinstance(item_id, bool) or not isinstance(item_id, int | np.integer):
            raise InvalidInput(f"item_id must be an integer, got {item_id!r}")
        found = self.store.get_items([int(item_id)])
        if int(item_id) not in found:
            raise ItemNotFound(f"no item with id {item_id}", {"id": int(item_id)})
        return found[int(item_id)]

    def _item_vector(self, item_id: int) -> np.ndarray | None:
        catalog = self.models.catalog()
        column = catalog.position.get(item_id)
        return catalog.vectors[column] if column is not None else None

    def _events(self, user: str) -> list[tuple[int, float, float, str]]:
        return user_events(self.db, user)

    def _by_key(self, user: str, key: str | None) -> dict[str, Any] | None:
        return None if key is None else interaction_by_key(self.db, user, key)

    def _decision(self, decision_id: str) -> LoggedChoice:
        return self._bandit().logged_decision(str(decision_id))
