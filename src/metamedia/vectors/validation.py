"""Input checks shared by writes and searches; each raises a named error before anything changes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import faiss as _faiss
import numpy as np

from ..errors import DimensionMismatch, InvalidInput, InvalidQuery
from .base import MAX_BATCH, MAX_EF, MAX_K
from .config import CollectionConfig
from .payloads import Payload, validate_payload

faiss: Any = _faiss  # its bundled stubs miss the SWIG helpers
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Squared norms within this of 1 count as unit length (float32 normalisation leaves ~1e-7).
UNIT_TOLERANCE = 1e-6


def check_ids(
    ids: Sequence[int] | np.ndarray, *, unique: bool = True, limit: int | None = MAX_BATCH
) -> np.ndarray:
    """Point ids as an int64 array; rejects non-integers, out-of-range values, duplicates.

    `limit` bounds write batches; in-process reads (get_vectors) pass None.
    """
    array = np.asarray(ids)
    if array.ndim != 1:
        raise InvalidInput(f"ids must be a flat list, got shape {array.shape}")
    if limit is not None and len(array) > limit:
        raise InvalidInput(f"at most {MAX_BATCH} points per batch, got {len(array)}")
    if len(array) == 0:
        return np.zeros(0, dtype=np.int64)
    if array.dtype == object:
        for value in array:
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise InvalidInput(f"ids must be integers, got {value!r}")
            if not _INT64_MIN <= int(value) <= _INT64_MAX:
                raise InvalidInput(f"id {value} does not fit in 64 bits")
        array = array.astype(np.int64)
    elif array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise InvalidInput(f"ids must be integers, got {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if unique and len(np.unique(array)) != len(array):
        values, counts = np.unique(array, return_counts=True)
        raise InvalidInput(f"duplicate ids in one batch: {values[counts > 1][:10].tolist()}")
    return array


def check_vectors(
    vectors: Any, config: CollectionConfig, count: int | None = None, *, what: str = "vectors"
) -> np.ndarray:
    """(n, dim) float32, finite, normalised for cosine; a copy the caller may keep."""
    try:
        if isinstance(vectors, np.ndarray) and vectors.dtype == np.float32:
            array = np.array(vectors, dtype=np.float32, order="C")
        else:
            with np.errstate(over="ignore"):  # out-of-range values become inf and are refused below
                array = np.array(vectors, dtype=np.float32, order="C")
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"{what} must be numbers: {exc}") from exc
    if array.ndim == 1 and what == "query":
        array = array[None, :]
    if array.ndim != 2:
        raise DimensionMismatch(f"{what} must be a 2-d array (n, {config.dim}), got shape {array.shape}")
    if array.shape[1] != config.dim:
        raise DimensionMismatch(
            f"{what} have dimension {array.shape[1]}, collection {config.name!r} expects {config.dim}",
            {"expected": config.dim, "got": int(array.shape[1])},
        )
    if count is not None and len(array) != count:
        raise InvalidInput(f"{count} ids but {len(array)} vectors")
    if config.metric != "cosine":
        if not np.isfinite(array).all():
            _refuse_non_finite(array, what)
        return array
    # One pass finds the squared norms and checks finiteness: a NaN or infinite component makes its
    # row's sum non-finite. A float32 sum can also overflow for huge finite values: then the float64
    # path decides. One row (a query) skips numpy's per-call overhead for the scalar steps.
    # A row already of unit length to float32 precision (what embedding models return) is kept as
    # it is: dividing by its norm would only move the last bits.
    if len(array) == 1:
        # The same arithmetic as Collection's lean single-query path, so both give identical rows.
        square = squared_norm(array[0])
        if 0.0 < square < math.inf:
            if abs(square - 1.0) > UNIT_TOLERANCE:
                array *= np.float32(1.0 / math.sqrt(square))
            return array
    else:
        squares = np.einsum("ij,ij->i", array, array)
        if np.isfinite(squares).all() and squares.all():
            norms = np.sqrt(squares)
            norms[np.abs(squares - 1.0) <= UNIT_TOLERANCE] = 1.0
            array /= norms[:, None]
            return array
    norms = np.sqrt(np.einsum("ij,ij->i", array, array, dtype=np.float64))
    if not np.isfinite(norms).all():
        _refuse_non_finite(array, what)
    if not norms.all():
        raise InvalidInput(f"{what}: a zero vector has no direction (cosine metric), row {int(np.argmin(norms))}")
    array /= norms[:, None]
    return array


def squared_norm(row: np.ndarray) -> float:
    """Sum of squares of one C-contiguous float32 row, in float32 (inf on overflow, NaN for NaN).

    faiss's kernel: a third of np.dot's cost for one query, and no floating-point warnings.
    """
    return float(faiss.fvec_norm_L2sqr(faiss.swig_ptr(row), len(row)))


def _refuse_non_finite(array: np.ndarray, what: str) -> None:
    row = int(np.argmin(np.isfinite(array).all(axis=1)))
    raise InvalidInput(f"{what} contain NaN or infinite values (row {row})")


def check_payloads(payloads: Sequence[Any] | None, count: int) -> list[Payload]:
    """One validated payload per point ({} when none)."""
    if payloads is None:
        return [{} for _ in range(count)]
    if len(payloads) != count:
        raise InvalidInput(f"{count} ids but {len(payloads)} payloads")
    return [validate_payload(p, f"payloads[{i}]") for i, p in enumerate(payloads)]


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= int(k) <= MAX_K:
        raise InvalidQuery(f"k must be an integer in 1..{MAX_K}, got {k!r}")
    return int(k)


def check_ef(ef: object, default: int) -> int:
    if ef is None:
        return default
    if isinstance(ef, bool) or not isinstance(ef, int | np.integer) or not 1 <= int(ef) <= MAX_EF:
        raise InvalidQuery(f"ef must be an integer in 1..{MAX_EF}, got {ef!r}")
    return int(ef)


def check_threshold(threshold: object) -> float | None:
    if threshold is None:
        return None
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float | np.floating)
        or not np.isfinite(threshold)
    ):
        raise InvalidQuery(f"threshold must be a finite number, got {threshold!r}")
    return float(threshold)
