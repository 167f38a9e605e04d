"""Collection: writes (store first, then memory), reads, and planned search over one vector set.

Scores: cosine = cosine similarity of the normalised vectors, dot = inner product (both higher is
better); l2 = Euclidean distance, NOT squared; manhattan = L1 distance (both lower is better).
`threshold` keeps hits with score >= threshold for similarities and <= threshold for distances.

Consistency: a write commits to the SQL store in one transaction, then is applied to memory
under the exclusive side of a readers-writer lock, so a reader sees a batch entirely or not at
all. Writers (and snapshot/compaction) are serialised by a separate mutex, which readers never
take: a compaction rebuilds the graph while searches continue on the old one. Between processes
over one data directory, writers also hold a file lock and every read first checks the change
beacon (see `sync`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput, InvalidQuery, NotFound
from .base import MAX_EF, MAX_K, Hit, Neighbours, higher_is_better
from .config import CollectionConfig
from .filters import Group, parse_filter
from .index import raw_to_scores
from .locks import ReadWriteLock
from .maintenance import CollectionMaintenance
from .planner import EF_PER_SELECTIVITY, PROBE, Plan, plan_search, refine_with_probe
from .state import CollectionState
from .store import PointStore
from .sync import SharedDirectory
from .validation import (
    UNIT_TOLERANCE,
    check_ef,
    check_ids,
    check_k,
    check_payloads,
    check_threshold,
    check_vectors,
    squared_norm,
)

logger = logging.getLogger("metamedia.vectors")

_FLOAT32 = np.dtype(np.float32)
# Hit(id, score) without NamedTuple's Python-level __new__: map(tuple.__new__, repeat(Hit), pairs)
# builds each hit in one C call (a list of 10 hits: ~2x faster than Hit(i, s) per pair).
_TUPLE_NEW: Callable[..., Any] = tuple.__new__


class Collection(CollectionMaintenance):
    """One named set of vectors with payloads. Obtain it from `VectorDB`, not directly."""

    def __init__(
        self,
        config: CollectionConfig,
        store: PointStore,
        directory: Path,
        state: CollectionState,
        shared: SharedDirectory,
        *,
        snapshot_version: int = -1,
    ) -> None:
        self._config = config
        self._store = store
        self.directory = directory
        self._state = state
        self._rw = ReadWriteLock()
        self._writer = threading.RLock()
        self._snapshot_version = snapshot_version
        # A state loaded from a snapshot shares that snapshot's full-vector file with other processes.
        self._init_sync(shared, owns_vectors=snapshot_version < 0)

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
        with self._writer, self._xlock:
            self._write_prepare_locked()
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
            self._bump_after_write()

    def delete(self, ids: Sequence[int] | np.ndarray) -> int:
        """Delete points; returns how many existed. Unknown ids are ignored."""
        id_array = np.unique(check_ids(ids, unique=False))
        with self._writer, self._xlock:
            self._write_prepare_locked()
            present = np.array([i for i in id_array.tolist() if i in self._state.id_to_label], dtype=np.int64)
            if not len(present):
                return 0
            version = self._store.write_delete(self.name, self._state.version, present)
            with self._rw.write():
                removed = self._state.apply_delete(present)
                self._state.version = version
            self._bump_after_write()
        return removed

    def set_ef_search(self, ef_search: int) -> None:
        """Change the default efSearch (persisted in the catalog)."""
        config = self._config.with_ef_search(check_ef(ef_search, self._config.ef_search))
        with self._writer, self._xlock:
            self._store.save_config(config)
            self._config = config

    # ---- reads --------------------------------------------------------------------------

    def get(self, point_id: int) -> tuple[np.ndarray, dict[str, Any]]:
        """(vector, payload) of a point; cosine collections return the normalised vector."""
        self._fresh()
        with self._rw.read():
            state = self._state
            label = state.id_to_label.get(int(point_id))
            if label is None:
                raise NotFound(f"point {point_id} not found in collection {self.name!r}", {"id": point_id})
            return state.index.full(np.array([label]))[0], state.columns.payload(label)

    def get_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Vectors of `ids` in the given order; NotFound names any missing id."""
        self._fresh()
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
        self._fresh()
        with self._rw.read():
            state = self._state
            return {pid: state.columns.payload(label).get(name) for pid, label in state.id_to_label.items()}

    def count(self) -> int:
        """Live points."""
        self._fresh()
        return self._state.n_alive

    def ids(self) -> np.ndarray:
        """Sorted ids of the live points."""
        self._fresh()
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
        self._fresh()
        if filter is None and threshold is None:
            found = self._lean_search(query, k, ef)
            if found is not None:
                distances, labels, label_ids = found
                if labels.shape[1] and labels[0, -1] >= 0:  # a full row: faiss pads missing hits at the end
                    scores = distances[0] if self._config.metric != "l2" else raw_to_scores("l2", distances[0])
                    pairs = zip(label_ids[labels[0]].tolist(), scores.tolist())  # noqa: B905 (equal lengths)
                    return list(map(_TUPLE_NEW, repeat(Hit), pairs))
                return _hit_lists(*_to_neighbours(self._config.metric, distances, labels, label_ids, None))[0]
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
        self._fresh()
        return _hit_lists(*self._search_matrix(queries, k, ef, filter, threshold))

    def search_arrays(
        self,
        queries: np.ndarray | Sequence[Sequence[float]],
        k: int = 10,
        *,
        ef: int | None = None,
        filter: dict[str, Any] | None = None,
        threshold: float | None = None,
    ) -> Neighbours:
        """`search_batch` answered as arrays (ids and scores of shape (n, k)), no object per hit.

        One query may be given as a vector of shape (dim,); the answer still has one row.
        """
        self._fresh()
        found = self._lean_search(queries, k, ef) if filter is None and threshold is None else None
        if found is not None:
            distances, labels, label_ids = found
            if labels.shape[1] and labels[0, -1] >= 0:  # a full row: one gather, no masks
                scores = distances if self._config.metric != "l2" else raw_to_scores("l2", distances)
                return _TUPLE_NEW(Neighbours, (label_ids[labels], scores))  # type: ignore[no-any-return]
            ids, scores, _ = _to_neighbours(self._config.metric, distances, labels, label_ids, None)
        else:
            array = np.asarray(queries)
            ids, scores, _ = self._search_matrix(
                array.reshape(1, -1) if array.ndim == 1 else array, k, ef, filter, threshold
            )
        if ids.shape[1] < int(k):  # fewer matching points than k: pad like faiss does
            pad = ((0, 0), (0, int(k) - ids.shape[1]))
            ids = np.pad(ids, pad, constant_values=-1)
            scores = np.pad(scores, pad, constant_values=np.nan)
        return Neighbours(ids, scores)

    def _search_matrix(
        self, queries: Any, k: int, ef: int | None, filter: dict[str, Any] | None, threshold: float | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, scores, valid) for every query: validated, one planned search for the whole batch."""
        tree = parse_filter(filter)
        k = check_k(k)
        ef_value = check_ef(ef, self._config.ef_search)
        limit = check_threshold(threshold)
        matrix = check_vectors(queries, self._config, what="queries")
        with self._rw.read():
            distances, labels, _ = self._run(self._state, matrix, k, ef_value, tree)
            label_ids = self._state.label_ids.data
        return _to_neighbours(self._config.metric, distances, labels, label_ids, limit)

    def _lean_search(self, query: object, k: object, ef: object) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """An unfiltered search of one well-formed float32 query: (distances, labels, label ids).

        None whenever anything needs the general path's checks (which raise the named errors), so
        the checks here only decide eligibility: every behaviour stays the general path's.
        """
        config = self._config
        if (
            type(query) is not np.ndarray
            or query.dtype is not _FLOAT32
            or query.shape != (config.dim,)
            or not query.flags.c_contiguous
            or type(k) is not int
            or not 0 < k <= MAX_K
        ):
            return None
        if ef is None:
            ef = config.ef_search
        elif type(ef) is not int or not 0 < ef <= MAX_EF:
            return None
        # One dot product checks finiteness (a NaN or infinite component makes it non-finite) and
        # gives the norm; the general path (check_vectors) computes it the same way for one row.
        square = squared_norm(query)
        if config.metric == "cosine":
            if not 0.0 < square < math.inf:
                return None
            row = query.reshape(1, -1)  # a view: faiss only reads it
            if abs(square - 1.0) > UNIT_TOLERANCE:
                row = row * np.float32(1.0 / math.sqrt(square))
        elif square < math.inf:
            row = query.reshape(1, -1)
        else:
            return None
        fetch = k * config.rerank
        self._rw.acquire_read()
        try:
            state = self._state
            index = state.index
            if (
                state.n_alive == state.size > config.exact_max
                and fetch <= state.size
                and config.precision == "float32"  # not quantised: nothing to re-rank
                and index.graph_ready
            ):
                # The planner's answer for this case (graph, unfiltered, ef widened to fetch), without
                # building a Plan: the common search in three attribute reads.
                distances, labels = index.search_unfiltered(row, fetch, min(max(ef, fetch), MAX_EF))
                if fetch != k:
                    distances, labels = distances[:, :k], labels[:, :k]
                if labels[0, -1] < 0:  # the walk found fewer than k: the general path answers exactly
                    distances, labels, _ = self._run(state, row, k, ef, None)
            else:
                distances, labels, _ = self._run(state, row, k, ef, None)
            return distances, labels, state.label_ids.data
        finally:
            self._rw.release_read()

    def explain(
        self, k: int = 10, *, ef: int | None = None, filter: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The plan a search with these parameters would run (exact or graph, ef, selectivity)."""
        self._fresh()
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


def _to_neighbours(
    metric: str, distances: np.ndarray, labels: np.ndarray, label_ids: np.ndarray, limit: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """faiss's (distances, labels) to (ids, scores, valid), vectorised over the whole batch."""
    scores = raw_to_scores(metric, distances)
    valid = labels >= 0
    if limit is not None:
        valid &= (scores >= limit) if higher_is_better(metric) else (scores <= limit)
    ids = label_ids[np.maximum(labels, 0)]
    if not valid.all():
        ids[~valid] = -1
        scores = np.where(valid, scores, np.float32(np.nan))
    return ids, scores.astype(np.float32, copy=False), valid


def _hit_lists(ids: np.ndarray, scores: np.ndarray, valid: np.ndarray) -> list[list[Hit]]:
    """One list of Hits per row; whole-matrix conversions first (per-row numpy calls dominate)."""
    if valid.all():
        return [
            list(map(_TUPLE_NEW, repeat(Hit), zip(row_ids, row_scores)))  # noqa: B905 (equal lengths)
            for row_ids, row_scores in zip(ids.tolist(), scores.tolist(), strict=True)
        ]
    return [
        [Hit(i, s) for i, s, ok in zip(row_ids, row_scores, oks, strict=True) if ok]
        for row_ids, row_scores, oks in zip(ids.tolist(), scores.tolist(), valid.tolist(), strict=True)
    ]
