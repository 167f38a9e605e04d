"""The vector filter language (metamedia.vectors.filters) compiled to parameterised PostgreSQL.

Values are never formatted into SQL: each one is a bound parameter, and field names travel
inside a bound jsonpath string (quoted and escaped), so a payload key cannot change the query.
Semantics follow the embedded store: on list fields a condition holds when it holds for any
element; numbers compare by value; booleans are not numbers; a missing field satisfies only
{"exists": false}. Date ranges compare ISO strings as UTC instants (`jsonb_path_exists_tz`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..vectors.filters import ID_FIELD, Contains, Eq, Exists, Group, In, Node, Range
from .typed import TypedField, typed_condition

_RANGE_OPS = (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="))


def _json_path_key(field: str) -> str:
    return '"' + field.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FilterCompiler:
    """Turns a parsed filter into one SQL boolean expression plus its bound parameters."""

    def __init__(
        self,
        payload_column: str = "payload",
        id_column: str = "id",
        typed: Mapping[str, TypedField] | None = None,
    ) -> None:
        self.payload = payload_column
        self.id = id_column
        self.typed = dict(typed or {})
        self.all_typed = True  # every field condition ran on a typed column (estimates are sound)
        self.used_typed: dict[str, TypedField] = {}  # typed fields the filter tests
        self.typed_only = False  # compile typed conditions without their JSONB fallback
        self.params: dict[str, Any] = {}
        self._names = itertools.count()

    def bind(self, value: Any) -> str:
        name = f"f{next(self._names)}"
        self.params[name] = value
        return f":{name}"

    def compile(self, group: Group) -> str:
        return self._group(group)

    def compile_typed_only(self, group: Group) -> str:
        """The same filter with typed conditions on their columns alone (no JSONB fallback): exact
        on rows where no tested typed field is a list or an object (see typed.py). Parameters are
        added to the same `params`, so it can run in one statement with `compile`'s output."""
        self.typed_only = True
        try:
            return self._group(group)
        finally:
            self.typed_only = False

    def _group(self, group: Group) -> str:
        parts = [self._node(n) for n in group.must]
        if group.should:
            parts.append("(" + " OR ".join(self._node(n) for n in group.should) + ")")
        if group.must_not:
            parts.append("NOT (" + " OR ".join(self._node(n) for n in group.must_not) + ")")
        return "(" + " AND ".join(parts) + ")" if parts else "TRUE"

    def _node(self, node: Node) -> str:
        if isinstance(node, Group):
            return self._group(node)
        if node.field == ID_FIELD:
            return self._id_condition(node)
        if isinstance(node, Eq | In | Range):
            column = self._typed(node)
            if column is None:
                self.all_typed = False
                return self._jsonb(node)
            self.used_typed[node.field] = self.typed[node.field]
            return typed_condition(
                self.typed[node.field], column, None if self.typed_only else self._jsonb(node)
            )
        self.all_typed = False
        if isinstance(node, Exists):
            present = (
                f"(jsonb_typeof({self.payload} -> {self.bind(node.field)}) IS NOT NULL "
                f"AND jsonb_typeof({self.payload} -> {self.bind(node.field)}) <> 'null')"
            )
            return present if node.present else f"NOT {present}"
        if isinstance(node, Contains):
            path = self.bind(f"$.{_json_path_key(node.field)}[*]")
            needle = self.bind(node.needle)
            # every value is a bound parameter; only our own column name is formatted in
            select_strings = (
                f"SELECT 1 FROM jsonb_path_query({self.payload}, CAST({path} AS jsonpath)) AS e(v)"  # noqa: S608
            )
            return f"EXISTS ({select_strings} WHERE jsonb_typeof(e.v) = 'string' AND strpos(lower(e.v #>> '{{}}'), {needle}) > 0)"
        raise TypeError(f"unknown filter node {node!r}")  # pragma: no cover - the parser makes only these

    def _jsonb(self, node: Eq | In | Range) -> str:
        if isinstance(node, Eq):
            return self._path_exists(node.field, "@ == $v", {"v": node.value})
        if isinstance(node, In):
            return self._path_exists(node.field, "@ == $v[*]", {"v": list(node.values)})
        return self._range(node)

    def _typed(self, node: Eq | In | Range) -> str | None:
        """The test on the field's typed column, or None when the field or the values do not fit it."""
        typed = self.typed.get(node.field)
        if typed is None:
            return None
        if isinstance(node, Range):
            if node.on_dates or typed.kind != "number":
                return None
            bounds = [(op, getattr(node, key)) for key, op in _RANGE_OPS if getattr(node, key) is not None]
            return " AND ".join(f"{typed.column} {op} {self._typed_value(typed, v)}" for op, v in bounds)
        values = [node.value] if isinstance(node, Eq) else list(node.values)
        if not values or not all(_fits(typed.kind, v) for v in values):
            return None
        if len(values) == 1:
            return f"{typed.column} = {self._typed_value(typed, values[0])}"
        sql_type = "numeric[]" if typed.kind == "number" else "text[]"
        listed = [json.dumps(v) if typed.kind == "number" else v for v in values]
        return f"{typed.column} = ANY(CAST({self.bind(listed)} AS {sql_type}))"

    def _typed_value(self, typed: TypedField, value: Any) -> str:
        if typed.kind == "number":  # the JSON text of the number, as the payload stores it: exact
            return f"CAST({self.bind(json.dumps(value))} AS numeric)"
        return self.bind(value)

    def _path_exists(self, field: str, predicate: str, variables: dict[str, Any], *, tz: bool = False) -> str:
        path = self.bind(f"$.{_json_path_key(field)}[*] ? ({predicate})")
        fn = "jsonb_path_exists_tz" if tz else "jsonb_path_exists"
        return f"{fn}({self.payload}, CAST({path} AS jsonpath), CAST({self.bind(json.dumps(variables))} AS jsonb))"

    def _range(self, node: Range) -> str:
        bounds = [(op, getattr(node, key)) for key, op in _RANGE_OPS if getattr(node, key) is not None]
        if node.on_dates:
            tests = " && ".join(f"@.datetime() {op} $b{i}.datetime()" for i, (op, _) in enumerate(bounds))
            values = {f"b{i}": _iso(v) for i, (_, v) in enumerate(bounds)}
            return self._path_exists(node.field, f'@.type() == "string" && {tests}', values, tz=True)
        tests = " && ".join(f"@ {op} $b{i}" for i, (op, _) in enumerate(bounds))
        values = {f"b{i}": v for i, (_, v) in enumerate(bounds)}
        return self._path_exists(node.field, f'@.type() == "number" && {tests}', values)

    def _id_condition(self, node: Node) -> str:
        if isinstance(node, Eq):
            return f"{self.id} = {self.bind(node.value)}"
        if isinstance(node, In):
            return f"{self.id} = ANY({self.bind(list(node.values))})"
        if isinstance(node, Range):
            ops = [
                f"{self.id} {op} {self.bind(getattr(node, key))}"
                for key, op in _RANGE_OPS
                if getattr(node, key) is not None
            ]
            return "(" + " AND ".join(ops) + ")"
        if isinstance(node, Exists):
            return "TRUE" if node.present else "FALSE"
        raise TypeError(f"{ID_FIELD} supports eq, in and range")  # pragma: no cover


def _fits(kind: str, value: Any) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def compile_filter(
    group: Group | None,
    payload_column: str = "payload",
    id_column: str = "id",
    typed: Mapping[str, TypedField] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(SQL boolean expression, parameters) for a parsed filter; ('TRUE', {}) for no filter.
    Conditions on `typed` fields use their generated columns (see typed.py)."""
    if group is None:
        return "TRUE", {}
    compiler = FilterCompiler(payload_column, id_column, typed)
    return compiler.compile(group), compiler.params
