"""CompactCollection: millions of vectors in a few hundred MB (faiss IVF-PQ + a float16 re-rank file).

    from metamedia.vectors import CompactCollection
    col = CompactCollection.create(directory, dim=384, fields=("genre", "year"))
    col.add(ids, vectors, {"genre": genre_codes, "year": years})   # repeated, in chunks
    col.save()                                                   # durable from here
    col = CompactCollection.open(directory)
    col.search(query, k=10, filter={"genre": 3, "year": (1990, 1999)})

What is in memory: the IVF-PQ codes (`pq_m` / 2 bytes per vector: 4-bit codes, default 24) and their ids, the
coarse centroids, an id map and the integer payload columns as numpy arrays (8 bytes per vector
each). The full vectors live only on disk, as float16 rows in `vectors.f16`; a search re-ranks
`k * rerank` PQ candidates with them, reading those rows with pread (they pass through the kernel's
page cache, which it may evict, but never become part of the process's resident set). At 1M x 384 that is ~ 60 MB of index state (codes, ids, id map,
one column) for a 768 MB re-rank file.

Filtered searches pick a plan by the filter's exact count: at most `exact_max` allowed points are
scored exactly from the re-rank file (recall 1.0 up to float16 rounding); more go through the IVF
lists with a bitmap selector and `nprobe` widened for rare filters.

Durability: this is a bulk-loaded, read-mostly collection. `add` and `delete` change memory and
append to the re-rank file; `save()` writes the index, id map and columns atomically (temporary
file + rename + fsync). After a crash the collection opens as of its last `save()`. Use the regular
`Collection` (SQL store of record, every write acknowledged durably) for a live catalog.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import faiss as _faiss
import numpy as np

from ..errors import DimensionMismatch, InvalidFilter, InvalidInput, NotFound
from ..fsutil import fsync_path
from .base import MAX_K, Hit
from .validation import check_ids

faiss: Any = _faiss

FilterValue = int | tuple[int, int] | Sequence[int]
_METRICS = {"cosine": _faiss.METRIC_INNER_PRODUCT, "dot": _faiss.METRIC_INNER_PRODUCT, "l2": _faiss.METRIC_L2}
_CONFIG = "compact.json"
_INDEX = "index.ivfpq"
_VECTORS = "vectors.f16"
_CHUNK = 65_536
_FORMAT = 1


class CompactCollection:
    """A persistent IVF-PQ collection with float16 re-ranking and integer payload filters."""

    def __init__(
        self, directory: Path, config: dict[str, Any], index: Any, arrays: dict[str, np.ndarray]
    ) -> None:
        self.directory = directory
        self.config = config
        self.dim = int(config["dim"])
        self.metric = str(config["metric"])
        self.fields: tuple[str, ...] = tuple(config["fields"])
        self._index = index
        self._ids = arrays.pop("ids")
        self._alive = arrays.pop("alive")
        self._columns = arrays
        self._count = int(config["count"])
        self._order = np.argsort(self._ids[: self._count], kind="stable")
        self._vectors_path = directory / _VECTORS

    # ---- creation and persistence ---------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: str | Path,
        *,
        dim: int,
        metric: str = "cosine",
        fields: Sequence[str] = (),
        nlist: int = 1024,
        pq_m: int = 48,
        nprobe: int | None = None,
        rerank: int = 200,
        train_size: int = 65_536,
        exact_max: int = 10_000,
    ) -> CompactCollection:
        """A new, empty collection in `directory` (which must not hold one already).

        Training (k-means for `nlist` lists and the PQ codebooks) runs once `train_size` points
        were added; until then every search is exact over the re-rank file.
        """
        path = Path(directory)
        nprobe = min(32, nlist) if nprobe is None else nprobe
        if (path / _CONFIG).exists():
            raise InvalidInput(f"{path} already holds a compact collection; open it instead")
        if metric not in _METRICS:
            raise InvalidInput(
                f"metric {metric!r} is unknown for a compact collection; choose cosine, dot or l2"
            )
        for name, value, low, high in (
            ("dim", dim, 1, 4096),
            ("nlist", nlist, 1, 1 << 20),
            ("pq_m", pq_m, 1, dim),
            ("nprobe", nprobe, 1, nlist),
            ("rerank", rerank, 1, 1000),
            ("exact_max", exact_max, 0, 1 << 30),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidInput(f"{name} must be an integer in {low}..{high}, got {value!r}")
        if dim % pq_m:
            raise InvalidInput(f"pq_m={pq_m} must divide dim={dim}")
        if train_size < max(nlist, 16) * 10:
            raise InvalidInput(
                f"train_size={train_size} is too small for {nlist} lists (k-means wants at least 10 points per list; faiss advises 39)"
            )
        names = list(fields)
        for name in names:
            if not isinstance(name, str) or not name.isidentifier():
                raise InvalidInput(f"field name {name!r} must be an identifier")
        if len(set(names)) != len(names) or {"ids", "alive"} & set(names):
            raise InvalidInput("field names must be unique and not 'ids' or 'alive'")
        path.mkdir(parents=True, exist_ok=True)
        (path / _VECTORS).write_bytes(b"")
        config = {
            "format": _FORMAT, "dim": dim, "metric": metric, "fields": names, "nlist": nlist, "pq_m": pq_m,
            "nprobe": nprobe, "rerank": rerank, "train_size": train_size, "exact_max": exact_max, "count": 0,
        }  # fmt: skip
        quantizer = faiss.IndexFlat(dim, _METRICS[metric])
        # 4-bit PQ in faiss's fast-scan layout (SIMD lookups): 16x cheaper codebook training than
        # 8-bit codes and faster scans; re-ranking with the float16 rows restores the ranking.
        index = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, pq_m, 4, _METRICS[metric])
        index.own_fields = True
        quantizer.this.disown()
        arrays = {"ids": np.zeros(0, np.int64), "alive": np.zeros(0, bool)}
        arrays.update({name: np.zeros(0, np.int64) for name in names})
        collection = cls(path, config, index, arrays)
        collection.save()
        return collection

    @classmethod
    def open(cls, directory: str | Path) -> CompactCollection:
        """Open a saved collection (as of its last `save()`)."""
        path = Path(directory)
        if not (path / _CONFIG).exists():
            raise NotFound(f"no compact collection in {path}")
        config = json.loads((path / _CONFIG).read_text())
        if config.get("format") != _FORMAT:
            raise InvalidInput(f"{path}: unknown compact collection format {config.get('format')!r}")
        index = faiss.read_index(str(path / _INDEX))
        arrays = {name: np.load(path / f"{name}.npy") for name in ("ids", "alive", *config["fields"])}
        count = int(config["count"])
        for name, array in arrays.items():
            if len(array) != count:
                raise InvalidInput(f"{path}: {name}.npy holds {len(array)} rows, {count} expected")
        if (path / _VECTORS).stat().st_size < count * config["dim"] * 2:
            raise InvalidInput(f"{path}: {_VECTORS} is shorter than {count} vectors")
        return cls(path, config, index, arrays)

    def save(self) -> None:
        """Write index, id map and columns atomically; the collection reopens as of this call."""
        with open(self._vectors_path, "r+b") as handle:
            handle.truncate(self._count * self.dim * 2)  # rows past the last save are dropped
            os.fsync(handle.fileno())
        arrays = {"ids": self._ids, "alive": self._alive, **self._columns}
        for name, array in arrays.items():
            _atomic(self.directory / f"{name}.npy", lambda handle, a=array: np.save(handle, a[: self._count]))
        _atomic(
            self.directory / _INDEX, lambda handle: handle.write(faiss.serialize_index(self._index).tobytes())
        )
        self.config["count"] = self._count
        _atomic(self.directory / _CONFIG, lambda handle: handle.write(json.dumps(self.config).encode()))
        fsync_path(self.directory)

    # ---- writes -----------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Points alive."""
        return int(self._alive[: self._count].sum())

    @property
    def trained(self) -> bool:
        return bool(self._index.is_trained)

    def add(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        columns: Mapping[str, Sequence[int] | np.ndarray] | None = None,
    ) -> None:
        """Append new points (ids must be new); `columns` gives every field one integer per point."""
        id_array = check_ids(ids, limit=None)
        matrix = self._check_vectors(vectors, len(id_array))
        values = self._check_columns(columns or {}, len(id_array))
        if len(self._order) and len(id_array):
            known = self._lookup(id_array)
            if (known >= 0).any():
                raise InvalidInput(
                    f"ids already present: {id_array[known >= 0][:10].tolist()}; delete them first"
                )
        start, end = self._count, self._count + len(id_array)
        with open(self._vectors_path, "r+b") as handle:
            handle.seek(start * self.dim * 2)
            handle.write(matrix.astype(np.float16).data)
        self._ids = _grow(self._ids, end, id_array, start)
        self._alive = _grow(self._alive, end, np.ones(len(id_array), bool), start)
        for name in self.fields:
            self._columns[name] = _grow(self._columns[name], end, values[name], start)
        self._count = end
        self._order = np.argsort(self._ids[:end], kind="stable")
        if self.trained:
            self._add_codes(matrix, start)
        elif end >= self.config["train_size"]:
            self._train()

    def delete(self, ids: Sequence[int] | np.ndarray) -> int:
        """Tombstone points; returns how many were alive. Unknown ids are ignored."""
        labels = self._lookup(check_ids(ids, unique=False, limit=None))
        labels = labels[labels >= 0]
        removed = int(self._alive[labels].sum())
        self._alive[labels] = False
        return removed

    def _train(self) -> None:
        rng = np.random.default_rng(0)
        size = int(self.config["train_size"])
        sample = np.sort(rng.choice(self._count, size=min(size, self._count), replace=False))
        threads = faiss.omp_get_max_threads()
        # k-means runs thousands of short OpenMP regions; on a busy machine each barrier waits for
        # a descheduled thread, so training runs on one thread.
        faiss.omp_set_num_threads(1)
        try:
            self._index.train(self._rows(sample))
        finally:
            faiss.omp_set_num_threads(threads)
        for start in range(0, self._count, _CHUNK):
            self._add_codes(self._rows(np.arange(start, min(start + _CHUNK, self._count))), start)

    def _add_codes(self, matrix: np.ndarray, start: int) -> None:
        for offset in range(0, len(matrix), _CHUNK):
            chunk = np.ascontiguousarray(matrix[offset : offset + _CHUNK], dtype=np.float32)
            labels = np.arange(start + offset, start + offset + len(chunk), dtype=np.int64)
            self._index.add_with_ids(chunk, labels)

    # ---- reads ------------------------------------------------------------------------------

    def get(self, point_id: int) -> tuple[np.ndarray, dict[str, int]]:
        """(vector as stored, float16 rounded; column values) of a live point."""
        label = int(self._lookup(np.array([point_id], np.int64))[0])
        if label < 0 or not self._alive[label]:
            raise NotFound(f"point {point_id} not found")
        return self._rows(np.array([label]))[0], {n: int(self._columns[n][label]) for n in self.fields}

    def search(
        self,
        queries: np.ndarray | Sequence[float],
        k: int = 10,
        *,
        filter: Mapping[str, FilterValue] | None = None,
        nprobe: int | None = None,
    ) -> list[list[Hit]]:
        """Best `k` live points per query (never fewer when `k` points match the filter)."""
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be an integer in 1..{MAX_K}, got {k!r}")
        probe = int(nprobe or self.config["nprobe"])
        if not 1 <= probe <= int(self.config["nlist"]):
            raise InvalidInput(f"nprobe must be in 1..{self.config['nlist']}, got {nprobe!r}")
        matrix = self._check_vectors(queries, None, what="query")
        allowed = self._allowed(filter)
        n_allowed = int(allowed.sum())
        if n_allowed == 0:
            return [[] for _ in matrix]
        k_eff = min(k, n_allowed)
        if not self.trained or n_allowed <= int(self.config["exact_max"]):
            distances, labels = self._exact(matrix, k_eff, np.flatnonzero(allowed))
        else:
            distances, labels = self._ivf(matrix, k_eff, allowed, n_allowed, probe)
        return [
            [
                Hit(int(self._ids[label]), float(score))
                for score, label in zip(row_d, row_l, strict=True)
                if label >= 0
            ]
            for row_d, row_l in zip(self._scores(distances), labels, strict=True)
        ]

    def _ivf(
        self, queries: np.ndarray, k: int, allowed: np.ndarray, n_allowed: int, nprobe: int
    ) -> tuple[np.ndarray, np.ndarray]:
        selectivity = n_allowed / max(self._count, 1)
        params = faiss.SearchParametersIVF()
        # A rare filter leaves few allowed points per list: probe more lists to find enough.
        params.nprobe = min(
            int(self.config["nlist"]), max(nprobe, int(np.ceil(nprobe / np.sqrt(selectivity))))
        )
        bitmap = None
        if n_allowed < self._count:
            bitmap = np.packbits(allowed, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        fetch = min(n_allowed, k * int(self.config["rerank"]))
        _, candidates = self._index.search(queries, fetch, params=params)
        distances, labels = self._rerank(queries, candidates, k)
        short = (labels < 0).any(axis=1)
        for row in np.flatnonzero(short):  # too few candidates in the probed lists: score exactly
            exact_d, exact_l = self._exact(queries[row : row + 1], k, np.flatnonzero(allowed))
            distances[row], labels[row] = exact_d[0], exact_l[0]
        return distances, labels

    def _exact(self, queries: np.ndarray, k: int, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        best_d = np.zeros((len(queries), 0), np.float32)
        best_l = np.zeros((len(queries), 0), np.int64)
        for start in range(0, len(labels), _CHUNK):
            chunk = labels[start : start + _CHUNK]
            distances = self._distances(queries, self._rows(chunk))
            take = min(k, len(chunk))
            part = np.argpartition(self._keys(distances), take - 1, axis=1)[:, :take]
            best_d, best_l = self._best(
                np.hstack([best_d, np.take_along_axis(distances, part, 1)]),
                np.hstack([best_l, chunk[part]]),
                k,
            )
        return best_d, best_l

    def _rerank(self, queries: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        out_d = np.full((len(queries), k), np.nan, np.float32)
        out_l = np.full((len(queries), k), -1, np.int64)
        for row, found in enumerate(candidates):
            found = found[found >= 0]
            if not len(found):
                continue
            rows = np.sort(found)  # sequential reads of the re-rank file
            distances = self._distances(queries[row : row + 1], self._rows(rows))
            best_d, best_l = self._best(distances, rows[None, :], k)
            out_d[row, : best_l.shape[1]], out_l[row, : best_l.shape[1]] = best_d[0], best_l[0]
        return out_d, out_l

    def _distances(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if self.metric == "l2":
            return (queries**2).sum(1)[:, None] - 2 * queries @ rows.T + (rows**2).sum(1)[None, :]
        return queries @ rows.T

    def _keys(self, distances: np.ndarray) -> np.ndarray:
        return distances if self.metric == "l2" else -distances

    def _best(self, distances: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self._keys(distances), axis=1, kind="stable")[:, :k]
        return np.take_along_axis(distances, order, 1), np.take_along_axis(labels, order, 1)

    def _scores(self, distances: np.ndarray) -> np.ndarray:
        return np.sqrt(np.maximum(distances, 0.0)) if self.metric == "l2" else distances

    # ---- helpers ----------------------------------------------------------------------------

    def _rows(self, labels: np.ndarray) -> np.ndarray:
        """float32 copies of the re-rank rows at `labels` (sorted or not), read with pread.

        Not a memory map: faulting scattered rows of a mapped file maps whole read-around windows
        into the process (measured: 10k scattered rows of a 768 MB file put 600 MB in RSS).
        Runs of consecutive labels are read with one call each.
        """
        row_bytes = self.dim * 2
        out = np.empty((len(labels), self.dim), dtype=np.float16)
        if not len(labels):
            return out.astype(np.float32)
        order = np.argsort(labels, kind="stable")
        ordered = np.asarray(labels, dtype=np.int64)[order]
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        starts = np.concatenate([[0], breaks])
        ends = np.concatenate([breaks, [len(ordered)]])
        buffer = np.empty((len(labels), self.dim), dtype=np.float16)
        descriptor = os.open(self._vectors_path, os.O_RDONLY)
        try:
            for first, last in zip(starts.tolist(), ends.tolist(), strict=True):
                view = memoryview(buffer[first:last].data).cast("B")
                if os.preadv(descriptor, [view], int(ordered[first]) * row_bytes) != len(view):
                    raise InvalidInput(f"{self._vectors_path} is shorter than its {self._count} vectors")
        finally:
            os.close(descriptor)
        out[order] = buffer
        return out.astype(np.float32)

    def _lookup(self, ids: np.ndarray) -> np.ndarray:
        """Labels of `ids` (-1 where unknown), through the sorted id map."""
        sorted_ids = self._ids[self._order]
        positions = np.searchsorted(sorted_ids, ids)
        positions = np.minimum(positions, max(len(sorted_ids) - 1, 0))
        if not len(sorted_ids):
            return np.full(len(ids), -1, np.int64)
        found = sorted_ids[positions] == ids
        return np.where(found, self._order[positions], -1)

    def _allowed(self, filter: Mapping[str, FilterValue] | None) -> np.ndarray:
        allowed = self._alive[: self._count].copy()
        if filter is None:
            return allowed
        if not isinstance(filter, Mapping):
            raise InvalidFilter("a compact filter is a mapping of field -> value, (low, high) or [values]")
        for name, value in filter.items():
            if name not in self._columns:
                raise InvalidFilter(
                    f"unknown filter field {name!r}; fields: {', '.join(self.fields) or 'none'}"
                )
            column = self._columns[name][: self._count]
            if isinstance(value, bool):
                raise InvalidFilter(f"filter {name!r}: expected an integer, got {value!r}")
            if isinstance(value, int | np.integer):
                allowed &= column == value
            elif isinstance(value, tuple) and len(value) == 2 and all(_is_int(v) for v in value):
                allowed &= (column >= value[0]) & (column <= value[1])
            elif (
                isinstance(value, Sequence) and not isinstance(value, str) and all(_is_int(v) for v in value)
            ):
                allowed &= np.isin(column, np.asarray(value, np.int64))
            else:
                raise InvalidFilter(
                    f"filter {name!r}: expected an integer, (low, high) or a list of integers"
                )
        return allowed

    def _check_vectors(self, vectors: Any, count: int | None, what: str = "vectors") -> np.ndarray:
        try:
            matrix = np.array(vectors, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{what} must be numbers: {exc}") from exc
        if matrix.ndim == 1 and what == "query":
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] != self.dim:
            raise DimensionMismatch(f"{what} must have shape (n, {self.dim}), got {matrix.shape}")
        if count is not None and len(matrix) != count:
            raise InvalidInput(f"{count} ids but {len(matrix)} vectors")
        if not np.isfinite(matrix).all():
            raise InvalidInput(f"{what} must be finite numbers")
        if self.metric == "cosine":
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            if (norms == 0).any():
                raise InvalidInput(f"cosine {what} must not be all zeros")
            matrix /= norms
        return matrix

    def _check_columns(self, columns: Mapping[str, Any], count: int) -> dict[str, np.ndarray]:
        unknown = set(columns) - set(self.fields)
        if unknown:
            raise InvalidInput(
                f"unknown column(s) {', '.join(sorted(unknown))}; fields: {', '.join(self.fields)}"
            )
        values = {}
        for name in self.fields:
            if name not in columns:
                raise InvalidInput(f"column {name!r} is missing")
            array = np.asarray(columns[name])
            if array.shape != (count,) or array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
                raise InvalidInput(f"column {name!r} must hold {count} integers")
            values[name] = array.astype(np.int64)
        return values

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held in memory per part (IVF index as serialised, id map, columns)."""
        return {
            "ivf_index": int(faiss.serialize_index(self._index).nbytes),  # codes, ids, centroids
            "id_map": int(self._ids.nbytes + self._order.nbytes + self._alive.nbytes),
            "columns": int(sum(c.nbytes for c in self._columns.values())),
        }


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _grow(array: np.ndarray, size: int, values: np.ndarray, start: int) -> np.ndarray:
    """`array` with room for `size` rows (capacity doubles), `values` written at `start`."""
    if len(array) < size:
        grown = np.zeros(max(size, 2 * len(array)), dtype=array.dtype)
        grown[: len(array)] = array
        array = grown
    array[start : start + len(values)] = values
    return array


def _atomic(path: Path, write: Any) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
