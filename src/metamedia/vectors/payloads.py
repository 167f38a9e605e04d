"""Payload validation and the in-memory column store that evaluates filters over all points at once.

Points are addressed by internal label (0..n-1, append-only: a replaced point gets a new label),
so a label's payload never changes and columns only grow. Each field keeps a dictionary-encoded
column (one int32 code per label) plus (label, code) pairs for list values; a filter condition
is evaluated once over the field's distinct values, then mapped to labels with one numpy gather.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInput
from .filters import ID_FIELD, Contains, Eq, Exists, Group, In, Node, Range, iso_timestamp

Payload = dict[str, Any]
MAX_PAYLOAD_KEYS = 256
_MISSING, _LIST = -1, -2

Key = tuple[str, Any]


def validate_payload(payload: object, where: str) -> Payload:
    """Check a payload holds only str/int/float/bool/None/list[str|int] values; return a copy."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"{where}: payload must be an object, got {type(payload).__name__}")
    if len(payload) > MAX_PAYLOAD_KEYS:
        raise InvalidInput(f"{where}: payload has more than {MAX_PAYLOAD_KEYS} fields")
    clean: Payload = {}
    for key, value in payload.items():
        if not isinstance(key, str) or not key or key == ID_FIELD:
            raise InvalidInput(f"{where}: payload keys must be non-empty strings other than {ID_FIELD!r}")
        if isinstance(value, list):
            for item in value:
                if isinstance(item, bool) or not isinstance(item, str | int):
                    raise InvalidInput(
                        f"{where}.{key}: list values may hold only strings and integers, got {type(item).__name__}"
                    )
            clean[key] = list(value)
        elif value is None or isinstance(value, str | bool | int):
            clean[key] = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidInput(f"{where}.{key}: numbers must be finite")
            clean[key] = value
        else:
            raise InvalidInput(
                f"{where}.{key}: payload values must be str, int, float, bool, null or a list of str/int, "
                f"got {type(value).__name__}"
            )
    return clean


def _key(value: Any) -> Key:
    if value is None:
        return ("z", None)
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    return ("s", value)


class Growable:
    """A numpy array with amortised appends."""

    def __init__(self, dtype: Any, fill: Any = 0) -> None:
        self.data = np.full(16, fill, dtype=dtype)
        self.fill = fill
        self.size = 0

    def reserve(self, size: int) -> None:
        if size > len(self.data):
            bigger = np.full(max(size, 2 * len(self.data)), self.fill, dtype=self.data.dtype)
            bigger[: len(self.data)] = self.data
            self.data = bigger

    def extend(self, values: Sequence[Any] | np.ndarray) -> None:
        self.reserve(self.size + len(values))
        self.data[self.size : self.size + len(values)] = values
        self.size += len(values)

    def view(self) -> np.ndarray:
        return self.data[: self.size]


class _FieldColumn:
    def __init__(self) -> None:
        self.codes = Growable(np.int32, _MISSING)
        self.pair_labels = Growable(np.int64)
        self.pair_codes = Growable(np.int32)
        self._vocab: dict[Key, int] = {}
        self.vocab_num = Growable(np.float64, np.nan)
        self.vocab_ts = Growable(np.float64, np.nan)
        self._vocab_text: list[str] = []
        self._text_array: np.ndarray | None = None
        # (kinds, texts, bools) from a snapshot: the vocabulary is built on first use, not on open.
        self._saved: tuple[str, list[str] | _LazyTexts, int, list[bool]] | None = None

    @property
    def vocab(self) -> dict[Key, int]:
        if self._saved is not None:
            self._load_vocab()
        return self._vocab

    @property
    def vocab_text(self) -> list[str]:
        if self._saved is not None:
            self._load_vocab()
        return self._vocab_text

    def _load_vocab(self) -> None:
        assert self._saved is not None
        kinds, saved_texts, index, bools = self._saved
        texts = saved_texts.field(index) if isinstance(saved_texts, _LazyTexts) else saved_texts
        if len(texts) != len(kinds):
            raise ValueError("payload vocabulary texts do not match their kinds")
        nums = self.vocab_num.view().tolist()
        keys: list[Key] = []
        if kinds == "s" * len(kinds):  # the common cases in one C-level pass
            keys = list(zip(itertools.repeat("s"), texts, strict=False))
        elif kinds == "n" * len(kinds):
            keys = list(zip(itertools.repeat("n"), nums, strict=False))
        for code, kind in enumerate(kinds if not keys and kinds else ""):
            if kind == "n":
                keys.append(("n", nums[code]))
            elif kind == "s":
                keys.append(("s", texts[code]))
            elif kind == "b":
                keys.append(("b", bools[code]))
            else:
                keys.append(("z", None))
        self._vocab = dict(zip(keys, range(len(keys)), strict=True))
        self._vocab_text = [t.lower() if k == "s" else "" for k, t in zip(kinds, texts, strict=True)]
        self._saved = None

    def code(self, value: Any) -> int:
        key = _key(value)
        code = self.vocab.get(key)
        if code is None:
            code = self.vocab[key] = len(self.vocab)
            is_number = key[0] == "n"
            is_text = key[0] == "s"
            self.vocab_num.extend([key[1] if is_number else np.nan])
            stamp = iso_timestamp(value) if is_text else None
            self.vocab_ts.extend([np.nan if stamp is None else stamp])
            self.vocab_text.append(value.lower() if is_text else "")
            self._text_array = None
        return code

    def text_array(self) -> np.ndarray:
        if self._text_array is None:
            self._text_array = (
                np.array(self.vocab_text, dtype=str) if self.vocab_text else np.array([], dtype=str)
            )
        return self._text_array


class _LazyTexts:
    """Every field's vocabulary texts as one JSON list of lists, parsed once on first use."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.parsed: list[list[str]] | None = None

    def field(self, index: int) -> list[str]:
        if self.parsed is None:
            self.parsed = json.loads(self.blob)
            self.blob = b""
        return self.parsed[index]


class _RawPayloads:
    """Raw payloads by label: the first labels as JSON lines in one bytes blob (from a snapshot,
    decoded only when asked for), later ones as dicts."""

    def __init__(self, blob: bytes = b"", offsets: np.ndarray | None = None) -> None:
        self.blob = blob
        self.offsets = offsets if offsets is not None else np.zeros(1, dtype=np.int64)
        self.base = len(self.offsets) - 1
        self.items: list[Payload | None] = []

    def __len__(self) -> int:
        return self.base + len(self.items)

    def append(self, payload: Payload | None) -> None:
        self.items.append(payload)

    def __getitem__(self, label: int) -> Payload | None:
        if label >= self.base:
            return self.items[label - self.base]
        start, end = int(self.offsets[label]), int(self.offsets[label + 1])
        return json.loads(self.blob[start:end]) or None


class PayloadColumns:
    """Payloads of every label, raw (for `get`) and as columns (for filters)."""

    def __init__(self) -> None:
        self.size = 0
        self._raw = _RawPayloads()
        self._fields: dict[str, _FieldColumn] = {}

    # ---- binary form (snapshots): columns as arrays, raw payloads as one JSON-lines blob -------

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta, arrays) describing every column; `from_arrays` rebuilds them without a Python
        loop over the points."""
        meta: dict[str, Any] = {"size": self.size, "fields": []}
        arrays: dict[str, np.ndarray] = {}
        for i, (name, column) in enumerate(sorted(self._fields.items())):
            keys = list(column.vocab)  # insertion order = code order
            meta["fields"].append(
                {
                    "name": name,
                    "kinds": "".join(k for k, _ in keys),
                    "texts": [v if k == "s" else "" for k, v in keys],  # JSON keeps every character
                }
            )
            arrays[f"f{i}_codes"] = column.codes.view()
            arrays[f"f{i}_pair_labels"] = column.pair_labels.view()
            arrays[f"f{i}_pair_codes"] = column.pair_codes.view()
            arrays[f"f{i}_num"] = column.vocab_num.view()
            arrays[f"f{i}_ts"] = column.vocab_ts.view()
            arrays[f"f{i}_bool"] = np.array([bool(v) if k == "b" else False for k, v in keys], dtype=bool)
        return meta, arrays

    @classmethod
    def from_arrays(
        cls,
        meta: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        blob: bytes,
        offsets: np.ndarray,
        texts: bytes | None = None,
    ) -> PayloadColumns:
        """Columns saved by `to_arrays`, with the raw payloads in `blob` (JSON lines at `offsets`).

        `texts`: the fields' vocabulary texts as one JSON list of lists (when `meta` leaves them
        out), parsed when a field's vocabulary is first needed rather than on open.
        """
        columns = cls()
        lazy = _LazyTexts(texts if texts is not None else b"[]")
        columns.size = int(meta["size"])
        if len(offsets) != columns.size + 1:
            raise ValueError("payload offsets do not match the column size")
        columns._raw = _RawPayloads(blob, offsets)
        for i, info in enumerate(meta["fields"]):
            column = _FieldColumn()
            column.codes.extend(arrays[f"f{i}_codes"])
            column.pair_labels.extend(arrays[f"f{i}_pair_labels"])
            column.pair_codes.extend(arrays[f"f{i}_pair_codes"])
            column.vocab_num.extend(arrays[f"f{i}_num"])
            column.vocab_ts.extend(arrays[f"f{i}_ts"])
            kinds: str = info["kinds"]
            field_texts: list[str] | _LazyTexts = info["texts"] if "texts" in info else lazy
            bools = arrays[f"f{i}_bool"].tolist()
            if not (len(kinds) == len(bools) == column.vocab_num.size == column.vocab_ts.size):
                raise ValueError(f"payload column {info['name']!r} is inconsistent")
            column._saved = (kinds, field_texts, i, bools)
            if len(column.codes.view()) != columns.size:
                raise ValueError(f"payload column {info['name']!r} is inconsistent")
            columns._fields[info["name"]] = column
        return columns

    def append(self, payloads: Iterable[Payload | None]) -> None:
        """Add payloads for the next labels, in label order."""
        for payload in payloads:
            label = self.size
            self._raw.append(payload or None)
            for name, value in (payload or {}).items():
                column = self._fields.get(name)
                if column is None:
                    column = self._fields[name] = _FieldColumn()
                column.codes.reserve(label + 1)
                if isinstance(value, list):
                    column.codes.data[label] = _LIST
                    column.pair_labels.extend([label] * len(value))
                    column.pair_codes.extend([column.code(item) for item in value])
                else:
                    column.codes.data[label] = column.code(value)
            self.size += 1
        for column in self._fields.values():
            column.codes.reserve(self.size)
            column.codes.size = self.size

    def payload(self, label: int) -> Payload:
        """A copy of the payload stored for `label`."""
        raw = self._raw[label]
        return {k: (list(v) if isinstance(v, list) else v) for k, v in raw.items()} if raw else {}

    def field_names(self) -> list[str]:
        return sorted(self._fields)

    def evaluate(self, node: Node, label_ids: np.ndarray, size: int) -> np.ndarray:
        """Boolean mask over labels 0..size-1 of the points matching `node`."""
        if isinstance(node, Group):
            mask = np.ones(size, dtype=bool)
            for child in node.must:
                mask &= self.evaluate(child, label_ids, size)
            if node.should:
                anyof = np.zeros(size, dtype=bool)
                for child in node.should:
                    anyof |= self.evaluate(child, label_ids, size)
                mask &= anyof
            for child in node.must_not:
                mask &= ~self.evaluate(child, label_ids, size)
            return mask
        if node.field == ID_FIELD:
            return _evaluate_ids(node, label_ids[:size])
        column = self._fields.get(node.field)
        if column is None:
            return np.full(size, isinstance(node, Exists) and not node.present, dtype=bool)
        codes = column.codes.data[:size]
        if isinstance(node, Exists):
            none_code = column.vocab.get(("z", None), -3)
            present = ((codes >= 0) & (codes != none_code)) | (codes == _LIST)
            return present if node.present else ~present
        hit = _vocab_hits(node, column)
        mask = np.concatenate([hit, [False, False]])[codes]
        pair_labels = column.pair_labels.view()
        if len(pair_labels):
            chosen = pair_labels[hit[column.pair_codes.view()]]
            mask[chosen[chosen < size]] = True
        return mask


def _vocab_hits(node: Eq | In | Range | Contains, column: _FieldColumn) -> np.ndarray:
    hit = np.zeros(len(column.vocab), dtype=bool)
    if isinstance(node, Eq | In):
        values = (node.value,) if isinstance(node, Eq) else node.values
        codes = [column.vocab.get(_key(v)) for v in values]
        hit[[c for c in codes if c is not None]] = True
    elif isinstance(node, Range):
        numbers = column.vocab_ts.view() if node.on_dates else column.vocab_num.view()
        hit = _in_range(numbers, node)
    else:
        texts = column.text_array()
        if len(texts):
            hit = np.char.find(texts, node.needle) >= 0
    return hit


def _in_range(values: np.ndarray, node: Range) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        mask = ~np.isnan(values)
        if node.gt is not None:
            mask &= values > node.gt
        if node.gte is not None:
            mask &= values >= node.gte
        if node.lt is not None:
            mask &= values < node.lt
        if node.lte is not None:
            mask &= values <= node.lte
    return mask


def _evaluate_ids(node: Node, ids: np.ndarray) -> np.ndarray:
    if isinstance(node, Eq):
        return ids == node.value
    if isinstance(node, In):
        return np.isin(ids, np.array(node.values, dtype=np.int64))
    if isinstance(node, Range):
        return _in_range(ids.astype(np.float64), node)
    raise InvalidInput(f"{ID_FIELD!r} does not support {type(node).__name__}")
