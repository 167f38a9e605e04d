"""Collection: writes (store first, then memory), reads, and planned search over one vector set.

Scores: cosine = cosine similarity of the normalised vectors, dot = inner product (both higher is
better); l2 = Euclidean distance, NOT squared; manhattan = L1 distance (both lower is better).
`threshold` keeps hits with score >= threshold for similarities and <= threshold for distances.

Consistency: a write commits to the SQL store in one transaction, then is applied to memory
under the exclusive side of a readers-writer lock, so a reader sees a batch entirely or not at
all. Writers (and snapshot/compaction) are serialised by a separate mutex, which readers never
take: a compaction rebuilds the graph while searches continue on the old one.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, InvalidQuery, NotFound
from .base import MAX_EF, Hit, higher_is_better
from .config import CollectionConfig
from .filters import Group, parse_filter
from .index import raw_to_scores
from .locks import ReadWriteLock
from .maintenance import CollectionMaintenance
from .planner import EF_PER_SELECTIVITY, PROBE, Plan, plan_search, refine_with_probe
from .state import CollectionState
from .store import PointStore
from .validation import check_ef, check_ids, check_k, check_payloads, check_threshold, check_vectors

logger = logging.getLogger("metamedia.vectors")


class Collection(CollectionMaintenance):
    """One named set of vectors with payloads. Obtain it from `VectorDB`, not directly."""

    def __init__(
        self, config: CollectionConfig, store: PointStore, directory: Path, state: CollectionState
    ) -> None:
        self._config = config
        self._store = store
        self.directory = directory
        self._state = state
        self._rw = ReadWriteLock()
        self._writer = threading.RLock()
        self._snapshot_version = -1

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def config(self) -> CollectionConfig:
        return self._config

    @property
    def version(self) -> int:
        """Version of the last committed write applied to memory."""
        return self._state.version

    # ---- writes -------------------------------------------------------------------------

    def upsert(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray | Sequence[Sequence[float]],
        payloads: Sequence[dict[str, Any] | None] | None = None,
    ) -> None:
        """Insert or replace points. Validated first; acknowledged once the SQL commit is done."""
        id_array = check_ids(ids)
        if not len(id_array):
            if len(vectors) or payloads:
                raise InvalidInput(f"0 ids but {len(vectors)} vectors")
            return
        matrix = check_vectors(vectors, self._config, len(id_array))
        docs = check_payloads(payloads, len(id_array))
        with self._writer:
            version = self._store.write_upsert(self.name, self._state.version, id_array, matrix, docs)
            with self._rw.write():
                try:
                    self._state.apply_upsert(id_array, matrix, docs)
                    self._state.version = version
                except Exception:
                    logger.exception(
                        "collection %r: applying a committed write failed; rebuilding", self.name
                    )
                    self._rebuild_locked()

    def delete(self, ids: Sequence[int] | np.ndarray) -> int:
        """Delete points; returns how many existed. Unknown ids are ignored."""
        id_array = np.unique(check_ids(ids, unique=False))
        with self._writer:
            present = np.array([i for i in id_array.tolist() if i in self._state.id_to_label], dtype=np.int64)
            if not len(present):
                return 0
            version = self._store.write_delete(self.name, self._state.version, present)
            with self._rw.write():
                removed = self._state.apply_delete(present)
                self._state.version = version
        return removed

    def set_ef_search(self, ef_search: int) -> None:
        """Change the default efSearch (persisted in the catalog)."""
        config = self._config.with_ef_search(check_ef(ef_search, self._config.ef_search))
        with self._writer:
            self._store.save_config(config)
            self._config = config

    # ---- reads --------------------------------------------------------------------------

    def get(self, point_id: int) -> tuple[np.ndarray, dict[str, Any]]:
        """(vector, payload) of a point; cosine collections return the normalised vector."""
        with self._rw.read():
            state = self._state
            label = state.id_to_label.get(int(point_id))
            if label is None:
                raise NotFound(f"point {point_id} not found in collection {self.name!r}", {"id": point_id})
            return state.index.full(np.array([label]))[0], state.columns.payload(label)

    def get_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Vectors of `ids` in the given order; NotFound names any missing id."""
        id_array = check_ids(ids, unique=False, limit=None)
        with self._rw.read():
            state = self._state
            labels = [state.id_to_label.get(i) for i in id_array.tolist()]
            missing = [i for i, label in zip(id_array.tolist(), labels, strict=True) if label is None]
            if missing:
                raise NotFound(
                    f"{len(missing)} point(s) not found in collection {self.name!r}", {"ids": missing[:100]}
                )
            return state.index.full(np.array(labels, dtype=np.int64))

    def payload_field(self, name: str) -> dict[int, Any]:
        """One payload field of every live point, by id (None where a point lacks it)."""
        with self._rw.read():
            state = self._state
            return {pid: state.columns.payload(label).get(name) for pid, label in state.id_to_label.items()}

    def count(self) -> int:
        """Live points."""
        return self._state.n_alive

    def ids(self) -> np.ndarray:
        """Sorted ids of the live points."""
        with self._rw.read():
            return self._state.sorted_ids()

    def search(
        self,
        query: np.ndarray | Sequence[float],
        k: int = 10,
        *,
        ef: int | None = None,
        filter: dict[str, Any] | None = None,
        threshold: float | None = None,
    ) -> list[Hit]:
        """The k nearest live points to `query` (shape (dim,)), best first."""
        array = np.asarray(query)
        if array.ndim != 1 and not (array.ndim == 2 and array.shape[0] == 1):
            raise InvalidQuery(
                f"query must be one vector of shape ({self._config.dim},), got shape {array.shape}"
            )
        return self.search_batch(array.reshape(1, -1), k, ef=ef, filter=filter, threshold=threshold)[0]

    def search_batch(
        self,
        queries: np.ndarray | Sequence[Sequence[float]],
        k: int = 10,
        *,
        ef: int | None = None,
        filter: dict[str, Any] | None = None,
        threshold: float | None = None,
    ) -> list[list[Hit]]:
        """`search` for each row of `queries` (shape (n, dim)), one result list per row."""
        tree = parse_filter(filter)
        k = check_k(k)
        ef_value = check_ef(ef, self._config.ef_search)
        limit = check_threshold(threshold)
        matrix = check_vectors(queries, self._config, what="queries")
        with self._rw.read():
            distances, labels, _ = self._run(self._state, matrix, k, ef_value, tree)
            label_ids = self._state.label_ids.data
        scores = raw_to_scores(self._config.metric, distances)
        valid = labels >= 0
        if limit is not None:
            valid &= (scores >= limit) if higher_is_better(self._config.metric) else (scores <= limit)
        # Whole-matrix conversions, then plain Python: per-row numpy calls dominate small searches.
        id_rows = label_ids[np.where(valid, labels, 0)].tolist()
        results = [
            [Hit(i, s) for i, s, ok in zip(ids, row_scores, oks, strict=True) if ok]
            for ids, row_scores, oks in zip(id_rows, scores.tolist(), valid.tolist(), strict=True)
        ]
        return results

    def explain(
        self, k: int = 10, *, ef: int | None = None, filter: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The plan a search with these parameters would run (exact or graph, ef, selectivity)."""
        tree = parse_filter(filter)
        k, ef_value = check_k(k), check_ef(ef, self._config.ef_search)
        with self._rw.read():
            plan, _ = self._plan(self._state, k, ef_value, tree)
        return plan.describe()

    def _plan(
        self, state: CollectionState, k: int, ef: int, tree: Group | None
    ) -> tuple[Plan, np.ndarray | None]:
        size = state.size
        mask = None
        if tree is not None:
            mask = state.columns.evaluate(tree, state.label_ids.data, size) & state.alive.view()
            allowed = int(np.count_nonzero(mask))
        else:
            allowed = state.n_alive
        plan = plan_search(
            k=k,
            ef=ef,
            allowed=allowed,
            labels=size,
            graph_ready=state.index.graph_ready,
            rerank=self._config.rerank,
            exact_max=self._config.exact_max,
        )
        return plan, mask

    def _run(
        self, state: CollectionState, queries: np.ndarray, k: int, ef: int, tree: Group | None
    ) -> tuple[np.ndarray, np.ndarray, Plan]:
        plan, mask = self._plan(state, k, ef, tree)
        if plan.kind == "empty":
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64), plan

        def allowed_labels() -> np.ndarray:
            if mask is not None:
                return np.flatnonzero(mask)
            return state.alive_labels() if plan.filtered else np.arange(state.size)

        if plan.kind == "exact":
            distances, labels = state.index.search_exact(queries, plan.k, allowed_labels())
            return distances, labels, plan
        if not plan.filtered:
            distances, labels = self._graph(state, queries, plan, plan.ef, None)
        elif mask is None:
            # Only tombstones to skip: they are not clustered around queries, no probe needed.
            ef_walk = min(MAX_EF, max(plan.ef, math.ceil(plan.fetch / plan.selectivity * EF_PER_SELECTIVITY)))
            distances, labels = self._graph(state, queries, plan, ef_walk, state.alive_bitmap())
        else:
            distances, labels = self._filtered(state, queries, plan, mask, allowed_labels)
        short = (labels < 0).any(axis=1)
        if short.any():
            # The graph walk found fewer than k allowed points: answer those queries exactly.
            exact_d, exact_l = state.index.search_exact(queries[short], plan.k, allowed_labels())
            distances, labels = distances.copy(), labels.copy()
            distances[short], labels[short] = exact_d, exact_l
        return distances, labels, plan

    def _filtered(
        self, state: CollectionState, queries: np.ndarray, plan: Plan, mask: np.ndarray, allowed_labels: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Filtered graph search: probe the unfiltered graph around each query first.

        When the probe already holds `fetch` allowed candidates, they are the answer (any closer
        allowed point would be in the probe too). Otherwise the share of allowed points in the probe
        (the local selectivity) sets ef for a filtered walk, or sends the query to exact search.
        """
        index = state.index
        probe_d, probe_l = index.search_graph(queries, max(PROBE, plan.fetch), max(plan.ef, PROBE), None)
        allowed_hit = (probe_l >= 0) & mask[np.maximum(probe_l, 0)]
        found = allowed_hit.sum(axis=1)
        enough = found >= plan.fetch
        exact, ef_walk = refine_with_probe(plan, found / probe_l.shape[1], self._config.m)
        exact &= ~enough
        walk = ~(exact | enough)
        distances = np.full((len(queries), plan.k), np.nan, dtype=np.float32)
        labels = np.full((len(queries), plan.k), -1, dtype=np.int64)
        if enough.any():
            first = np.argsort(~allowed_hit[enough], axis=1, kind="stable")[:, : plan.fetch]
            cand_d = np.take_along_axis(probe_d[enough], first, 1)
            cand_l = np.take_along_axis(probe_l[enough], first, 1)
            if self._config.quantised:
                distances[enough], labels[enough] = index.rerank(queries[enough], cand_l, plan.k)
            else:
                distances[enough], labels[enough] = cand_d[:, : plan.k], cand_l[:, : plan.k]
        if exact.any():
            distances[exact], labels[exact] = index.search_exact(queries[exact], plan.k, allowed_labels())
        if walk.any():
            bitmap = np.packbits(mask, bitorder="little")
            distances[walk], labels[walk] = self._graph(state, queries[walk], plan, ef_walk, bitmap)
        return distances, labels

    def _graph(
        self, state: CollectionState, queries: np.ndarray, plan: Plan, ef: int, bitmap: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._config.quantised:
            # The walk has scored ef candidates anyway: re-rank all of them, not just `fetch`.
            _, labels = state.index.search_graph(queries, max(plan.fetch, ef), ef, bitmap)
            return state.index.rerank(queries, labels, plan.k)
        distances, labels = state.index.search_graph(queries, plan.fetch, ef, bitmap)
        return distances[:, : plan.k], labels[:, : plan.k]
