"""The filter language: parse and validate a JSON filter into a small typed tree.

    {"must": [cond, ...], "should": [cond, ...], "must_not": [cond, ...]}

All three keys are optional; `must` = all hold, `must_not` = none holds, `should` = at least one
holds (an empty `should` list is no constraint). A condition is either a nested group of the same
shape or one of:

    {"field": "year", "eq": 1999}                           equal (numbers compare by value: 1 == 1.0)
    {"field": "genres", "in": ["Drama", "War"]}             equal to any of the values
    {"field": "year", "range": {"gte": 1990, "lt": 2000}}   numbers, or ISO dates given as strings
    {"field": "poster_path", "exists": true}                present and not null
    {"field": "title", "contains": "star"}                  case-insensitive substring of a string

On a list-valued field (list of str/int) a condition holds when it holds for any element.
Booleans are not numbers: {"eq": 1} does not match `true`. A missing field satisfies only
{"exists": false}. The pseudo-field "$id" is the point id (eq, in, range).
Every problem raises `InvalidFilter` naming it, before anything is evaluated.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import InvalidFilter

ID_FIELD = "$id"
RANGE_KEYS = ("gt", "gte", "lt", "lte")
OPERATORS = ("eq", "in", "range", "exists", "contains")
GROUP_KEYS = ("must", "should", "must_not")
MAX_DEPTH = 16
MAX_IN_VALUES = 10_000

Scalar = str | int | float | bool
_DATE_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class Eq:
    field: str
    value: Scalar


@dataclass(frozen=True, slots=True)
class In:
    field: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Range:
    """Bounds as floats: numbers as given, ISO dates as POSIX timestamps (`on_dates`)."""

    field: str
    gt: float | None
    gte: float | None
    lt: float | None
    lte: float | None
    on_dates: bool


@dataclass(frozen=True, slots=True)
class Exists:
    field: str
    present: bool


@dataclass(frozen=True, slots=True)
class Contains:
    field: str
    needle: str  # already lower-cased


Condition = Eq | In | Range | Exists | Contains


@dataclass(frozen=True, slots=True)
class Group:
    must: tuple[Node, ...] = ()
    should: tuple[Node, ...] = ()
    must_not: tuple[Node, ...] = ()


Node = Group | Condition


def parse_filter(raw: object) -> Group | None:
    """Validate a JSON filter and return its tree; None (or {}) means no filter."""
    if raw is None:
        return None
    group = _parse_group(raw, "filter", 0)
    if not (group.must or group.should or group.must_not):
        return None
    return group


def iso_timestamp(text: str) -> float | None:
    """POSIX timestamp of an ISO date or datetime string (naive = UTC), None if it is not one."""
    if not _DATE_PREFIX.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_group(raw: object, where: str, depth: int) -> Group:
    if depth >= MAX_DEPTH:  # the top-level group is depth 0: MAX_DEPTH levels in all
        raise InvalidFilter(f"{where}: groups nested deeper than {MAX_DEPTH} levels")
    if not isinstance(raw, dict):
        raise InvalidFilter(f"{where}: expected an object with must/should/must_not, got {_kind(raw)}")
    unknown = set(raw) - set(GROUP_KEYS)
    if unknown:
        raise InvalidFilter(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; a group takes must, should, must_not"
        )
    parts: dict[str, tuple[Node, ...]] = {}
    for key in GROUP_KEYS:
        items = raw.get(key, [])
        if not isinstance(items, list):
            raise InvalidFilter(f"{where}.{key}: expected a list of conditions, got {_kind(items)}")
        parts[key] = tuple(
            _parse_node(item, f"{where}.{key}[{i}]", depth + 1) for i, item in enumerate(items)
        )
    return Group(**parts)


def _parse_node(raw: object, where: str, depth: int) -> Node:
    if not isinstance(raw, dict):
        raise InvalidFilter(f"{where}: expected a condition object, got {_kind(raw)}")
    if "field" not in raw:
        if set(raw) <= set(GROUP_KEYS):  # a nested group; an empty one matches everything
            return _parse_group(raw, where, depth)
        raise InvalidFilter(f"{where}: a condition needs 'field' (or must/should/must_not for a group)")
    field = raw["field"]
    if not isinstance(field, str) or not field:
        raise InvalidFilter(f"{where}.field: expected a non-empty string, got {_kind(field)}")
    ops = [key for key in raw if key != "field"]
    unknown = [key for key in ops if key not in OPERATORS]
    if unknown:
        raise InvalidFilter(f"{where}: unknown operator {unknown[0]!r}; use one of {', '.join(OPERATORS)}")
    if len(ops) != 1:
        raise InvalidFilter(f"{where}: a condition takes exactly one operator, got {len(ops)}")
    op, value = ops[0], raw[ops[0]]
    if field == ID_FIELD and op not in ("eq", "in", "range"):
        raise InvalidFilter(f"{where}: field {ID_FIELD!r} supports eq, in and range only")
    if op == "eq":
        return Eq(field, _scalar(value, f"{where}.eq", ids_only=field == ID_FIELD))
    if op == "in":
        if not isinstance(value, list):
            raise InvalidFilter(f"{where}.in: expected a list of values, got {_kind(value)}")
        if len(value) > MAX_IN_VALUES:
            raise InvalidFilter(f"{where}.in: at most {MAX_IN_VALUES} values")
        values = tuple(
            _scalar(v, f"{where}.in[{i}]", ids_only=field == ID_FIELD) for i, v in enumerate(value)
        )
        return In(field, values)
    if op == "range":
        return _parse_range(field, value, f"{where}.range")
    if op == "exists":
        if not isinstance(value, bool):
            raise InvalidFilter(f"{where}.exists: expected true or false, got {_kind(value)}")
        return Exists(field, value)
    if not isinstance(value, str) or not value:
        raise InvalidFilter(f"{where}.contains: expected a non-empty string, got {_kind(value)}")
    return Contains(field, value.lower())


def _parse_range(field: str, raw: object, where: str) -> Range:
    if not isinstance(raw, dict) or not raw:
        raise InvalidFilter(f"{where}: expected an object with gt/gte/lt/lte, got {_kind(raw)}")
    unknown = set(raw) - set(RANGE_KEYS)
    if unknown:
        raise InvalidFilter(
            f"{where}: unknown bound(s) {', '.join(sorted(map(str, unknown)))}; use gt, gte, lt, lte"
        )
    bounds: dict[str, float | None] = dict.fromkeys(RANGE_KEYS)
    kinds = set()
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidFilter(f"{where}.{key}: expected a number or an ISO date string, got {_kind(value)}")
        if isinstance(value, str):
            stamp = iso_timestamp(value)
            if stamp is None:
                raise InvalidFilter(f"{where}.{key}: {value!r} is not an ISO date (YYYY-MM-DD[THH:MM:SS])")
            bounds[key], kind = stamp, "date"
        else:
            if not math.isfinite(value):
                raise InvalidFilter(f"{where}.{key}: bound must be finite")
            bounds[key], kind = float(value), "number"
        kinds.add(kind)
    if len(kinds) > 1:
        raise InvalidFilter(f"{where}: mixes numbers and dates")
    if field == ID_FIELD and kinds == {"date"}:
        raise InvalidFilter(f"{where}: {ID_FIELD!r} ranges take numbers")
    return Range(field, bounds["gt"], bounds["gte"], bounds["lt"], bounds["lte"], on_dates=kinds == {"date"})


def _scalar(value: object, where: str, *, ids_only: bool = False) -> Scalar:
    if ids_only:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidFilter(f"{where}: {ID_FIELD!r} values must be integers, got {_kind(value)}")
        return value
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidFilter(f"{where}: value must be finite")
    if not isinstance(value, str | int | float | bool):
        raise InvalidFilter(f"{where}: expected a string, number or boolean, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
