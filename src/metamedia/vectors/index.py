"""AnnIndex: one faiss HNSW index per collection, addressed by internal label (0..n-1, append-only).

float32 keeps the vectors in the graph's own flat storage; quantised precisions (float16, int8,
pq) keep full vectors in a memory-mapped file beside the index and re-rank candidates with them.
int8 and pq are trained once `train_size` points exist; until then every search is exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np

from .config import CollectionConfig
from .fullvectors import MappedVectors

# faiss's bundled type stubs miss most of the SWIG API (hnsw, storage, SearchParametersHNSW...).
faiss: Any = _faiss

FAISS_METRIC = {
    "cosine": faiss.METRIC_INNER_PRODUCT,
    "dot": faiss.METRIC_INNER_PRODUCT,
    "l2": faiss.METRIC_L2,
    "manhattan": faiss.METRIC_L1,
}
# Training sample: min/max for int8 is cheap; PQ k-means wants >= 39 x 256 points, more is slow.
_TRAIN_SAMPLE = {"int8": 50_000, "pq": 10_000}
_ADD_CHUNK = 20_000
_RERANK_CHUNK = 64
_EXACT_CHUNK = 32_768
# float32 exact search scans the whole storage with a selector once the allowed labels are at
# least 1/_SCAN_SHARE of all labels; below that, gathering them is cheaper.
_SCAN_SHARE = 16


def new_faiss_index(config: CollectionConfig) -> Any:
    """An empty HNSW index for the collection's metric and precision."""
    metric = FAISS_METRIC[config.metric]
    index: Any
    if config.precision == "float32":
        index = faiss.IndexHNSWFlat(config.dim, config.m, metric)
    elif config.precision == "float16":
        index = faiss.IndexHNSWSQ(config.dim, faiss.ScalarQuantizer.QT_fp16, config.m, metric)
    elif config.precision == "int8":
        index = faiss.IndexHNSWSQ(config.dim, faiss.ScalarQuantizer.QT_8bit, config.m, metric)
        # Widen the trained min..max range by 10% each side: later points outside it are clipped.
        faiss.downcast_index(index.storage).sq.rangestat_arg = 0.1
    else:
        index = faiss.IndexHNSWPQ(config.dim, config.pq_m, config.m, 8, metric)
        storage = faiss.downcast_index(index.storage)
        # Polysemous training only helps Hamming-filtered search, which HNSW never uses; it is slow.
        storage.do_polysemous_training = False
        # 10 k-means iterations instead of 25: 2.5x faster training; re-ranking absorbs the loss.
        storage.pq.cp.niter = 10
    index.hnsw.efConstruction = config.ef_construction
    index.hnsw.efSearch = config.ef_search
    return index


def raw_to_scores(metric: str, distances: np.ndarray) -> np.ndarray:
    """faiss distances to our scores: l2 is reported as the Euclidean (not squared) distance."""
    if metric == "l2":
        return np.sqrt(np.maximum(distances, 0.0))
    return distances


class AnnIndex:
    """A faiss HNSW index plus the full vectors of every label (alive or not)."""

    def __init__(self, config: CollectionConfig, index: Any, vectors: MappedVectors | None) -> None:
        self.config = config
        self.index = index
        self.vectors = vectors
        self.metric_type = FAISS_METRIC[config.metric]
        self._graph_ready: bool | None = None
        self._params: dict[int, Any] = {}

    @classmethod
    def create(cls, config: CollectionConfig, vectors_path: Path) -> AnnIndex:
        """An empty index; `vectors_path` is the full-vector file (quantised precisions only)."""
        vectors = MappedVectors(vectors_path, config.dim) if config.quantised else None
        return cls(config, new_faiss_index(config), vectors)

    @classmethod
    def load(cls, config: CollectionConfig, index_path: Path, vectors_path: Path, count: int) -> AnnIndex:
        """Read a saved index (storage memory-mapped) and its full-vector file."""
        index = faiss.read_index(str(index_path), faiss.IO_FLAG_MMAP)
        vectors = MappedVectors(vectors_path, config.dim, count) if config.quantised else None
        loaded = cls(config, index, vectors)
        if loaded.size != count:
            raise ValueError(f"index holds {loaded.size} vectors, manifest says {count}")
        return loaded

    @property
    def size(self) -> int:
        """Number of labels, alive or not."""
        return self.vectors.count if self.vectors is not None else int(self.index.ntotal)

    @property
    def graph_ready(self) -> bool:
        """False while an int8/pq index still waits for `train_size` points (search is exact)."""
        if self._graph_ready is None:  # SWIG attribute reads cost microseconds: cached between adds
            self._graph_ready = bool(self.index.is_trained) and int(self.index.ntotal) == self.size
        return self._graph_ready

    def add(self, vectors: np.ndarray) -> None:
        """Append vectors (already normalised for cosine) as the next labels."""
        self._graph_ready = None
        if self.vectors is not None:
            self.vectors.append(vectors)
        if self.index.is_trained:
            for start in range(0, len(vectors), _ADD_CHUNK):
                self.index.add(vectors[start : start + _ADD_CHUNK])
        elif self.size >= self.config.train_size:
            self._train_and_fill()

    def _train_and_fill(self) -> None:
        full = self.full_view()
        rng = np.random.default_rng(0)
        limit = _TRAIN_SAMPLE[self.config.precision]
        if len(full) > limit:
            sample = full[np.sort(rng.choice(len(full), limit, replace=False))]
        else:
            sample = full
        threads = faiss.omp_get_max_threads()
        # k-means runs thousands of short OpenMP regions; on a busy machine each barrier waits for
        # a descheduled thread (measured: 10k x 384 PQ training 18 s with 1 thread, 43 s with 2).
        faiss.omp_set_num_threads(1)
        try:
            self.index.train(np.ascontiguousarray(sample, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(threads)
        self._link_with_full_vectors(full)

    def _link_with_full_vectors(self, full: np.ndarray) -> None:
        """Build the graph on exact distances, then keep only the codes.

        A graph linked with PQ distances loses much recall (measured: recall@10 .78 vs 1.0 after
        re-ranking on 32-d clustered data), so the links come from a temporary float32 graph.
        """
        flat = faiss.IndexHNSWFlat(self.config.dim, self.config.m, self.metric_type)
        flat.hnsw.efConstruction = self.config.ef_construction
        storage = faiss.downcast_index(self.index.storage)
        for start in range(0, len(full), _ADD_CHUNK):
            chunk = np.ascontiguousarray(full[start : start + _ADD_CHUNK], dtype=np.float32)
            flat.add(chunk)
            storage.add(chunk)
        self.index.hnsw = flat.hnsw
        self.index.ntotal = flat.ntotal

    def full_view(self) -> np.ndarray:
        """Full vectors of labels 0..size-1 (a view: valid until the next add)."""
        if self.vectors is not None:
            return self.vectors.view()
        storage = faiss.downcast_index(self.index.storage)
        n = int(self.index.ntotal)
        if n == 0:
            return np.zeros((0, self.config.dim), dtype=np.float32)
        return faiss.rev_swig_ptr(storage.get_xb(), n * self.config.dim).reshape(n, self.config.dim)

    def full(self, labels: np.ndarray) -> np.ndarray:
        """A copy of the full vectors at `labels`."""
        return np.array(self.full_view()[labels], dtype=np.float32)

    def reconstruct(self, labels: np.ndarray) -> np.ndarray:
        """Vectors decoded from the index codes (lossy for quantised precisions)."""
        if not self.graph_ready:
            return self.full(labels)
        return (
            np.vstack([self.index.reconstruct(int(label)) for label in labels])
            if len(labels)
            else np.zeros((0, self.config.dim), dtype=np.float32)
        )

    def search_graph(
        self, queries: np.ndarray, k: int, ef: int, bitmap: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """HNSW search; `bitmap` (packed little-endian bits over labels) restricts the labels."""
        if bitmap is None:
            return self.search_unfiltered(np.ascontiguousarray(queries, dtype=np.float32), k, ef)
        params = faiss.SearchParametersHNSW()
        params.efSearch = max(ef, k)
        selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        params.sel = selector
        distances, labels = self.index.search(queries, k, params=params)
        del selector
        return distances, labels

    def search_unfiltered(self, queries: np.ndarray, k: int, ef: int) -> tuple[np.ndarray, np.ndarray]:
        """HNSW search of C-contiguous float32 `queries` (n, dim) with efSearch max(ef, k).

        Calls the index's `search_c` (what faiss's `index.search` wrapper calls after checking its
        arguments) with the parameters object of this ef, built once and shared: it is read-only
        during a search.
        """
        ef = max(ef, k)
        params = self._params.get(ef)
        if params is None:
            params = faiss.SearchParametersHNSW()
            params.efSearch = ef
            self._params[ef] = params
        n = len(queries)
        distances = np.empty((n, k), dtype=np.float32)
        labels = np.empty((n, k), dtype=np.int64)
        swig_ptr = faiss.swig_ptr
        self.index.search_c(n, swig_ptr(queries), k, swig_ptr(distances), swig_ptr(labels), params)
        return distances, labels

    def search_exact(self, queries: np.ndarray, k: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Brute-force search over exactly `labels` with the full vectors."""
        k = min(k, len(labels))
        if k == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        scannable = self.config.precision != "pq"  # faiss's IndexPQ takes no selector
        if scannable and len(labels) * _SCAN_SHARE > self.size and self.graph_ready:
            # Many labels: scan the graph's own storage with a selector instead of gathering them.
            # float32 storage is exact; int8/float16 codes are scanned, then re-ranked exactly.
            mask = np.zeros(self.size, dtype=bool)
            mask[labels] = True
            bitmap = np.packbits(mask, bitorder="little")
            params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
            storage = faiss.downcast_index(self.index.storage)
            if self.vectors is None:
                distances, found = storage.search(queries, k, params=params)
                return distances, found
            fetch = min(len(labels), max(k * self.config.rerank, self.config.ef_search))
            _, candidates = storage.search(queries, fetch, params=params)
            return self.rerank(queries, candidates, k)
        best_d = np.zeros((len(queries), 0), np.float32)
        best_l = np.zeros((len(queries), 0), np.int64)
        for start in range(0, len(labels), _EXACT_CHUNK):
            chunk = labels[start : start + _EXACT_CHUNK]
            flat = faiss.IndexFlat(self.config.dim, self.metric_type)
            flat.add(self.full(chunk))
            distances, positions = flat.search(queries, min(k, len(chunk)))
            best_d, best_l = self._best(
                np.hstack([best_d, distances]), np.hstack([best_l, chunk[positions]]), k
            )
        return best_d, best_l

    def _best(self, distances: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        keys = -distances if self.metric_type == faiss.METRIC_INNER_PRODUCT else distances
        order = np.argsort(keys, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(distances, order, 1), np.take_along_axis(labels, order, 1)

    def rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact distances for candidate labels (-1 = none), best k per query, in faiss's order."""
        out_d = np.full((len(queries), k), np.nan, dtype=np.float32)
        out_l = np.full((len(queries), k), -1, dtype=np.int64)
        full = self.full_view()
        for start in range(0, len(queries), _RERANK_CHUNK):
            block = candidates[start : start + _RERANK_CHUNK]
            safe = np.where(block < 0, 0, block)
            gathered = np.asarray(full[safe.ravel()], dtype=np.float32).reshape(*block.shape, -1)
            distances = _distances(self.config.metric, queries[start : start + _RERANK_CHUNK], gathered)
            distances = np.where(block < 0, np.nan, distances)
            ascending = self.metric_type != faiss.METRIC_INNER_PRODUCT
            keys = np.where(np.isnan(distances), np.inf, distances if ascending else -distances)
            order = np.argsort(keys, axis=1, kind="stable")[:, :k]
            out_d[start : start + len(block), : order.shape[1]] = np.take_along_axis(distances, order, 1)
            out_l[start : start + len(block), : order.shape[1]] = np.take_along_axis(block, order, 1)
        return out_d, out_l

    def write(self, path: Path) -> None:
        """Write the faiss index (not the full-vector file) to `path`."""
        faiss.write_index(self.index, str(path))

    def bytes_per_vector(self) -> dict[str, float]:
        """Measured memory per vector: index codes, graph links, and the re-rank file."""
        n = max(int(self.index.ntotal), 1)
        storage = faiss.downcast_index(self.index.storage)
        graph = (
            self.index.hnsw.neighbors.size() * 4
            + self.index.hnsw.offsets.size() * 8
            + self.index.hnsw.levels.size() * 4
        ) / n
        codes = float(storage.code_size) if self.index.ntotal else float(storage.sa_code_size())
        rerank = float(self.config.dim * 4) if self.vectors is not None else 0.0
        return {
            "codes": codes,
            "graph": round(graph, 1),
            "rerank_file": rerank,
            "in_memory": round(codes + graph, 1),
        }


def _distances(metric: str, queries: np.ndarray, gathered: np.ndarray) -> np.ndarray:
    if metric in ("cosine", "dot"):
        return np.einsum("qd,qkd->qk", queries, gathered)
    diff = gathered - queries[:, None, :]
    if metric == "l2":
        return np.einsum("qkd,qkd->qk", diff, diff)
    return np.abs(diff).sum(axis=2)
