"""Typed filter columns: payload fields copied into generated, btree-indexed columns.

Filters on JSONB run `jsonb_path_exists` on every row; a scalar number or string field that a
collection filters on often can instead live in a STORED generated column (`numeric` or `text`)
with a btree index, so PostgreSQL finds the matching rows through the index and the planner
estimates their count from the column's statistics.

The column holds the field only where the payload has a scalar of that kind (NULL for a missing
field, a list, or another type), so a compiled condition reads the column where it is set and
falls back to the JSONB test where it is NULL: the filter language's semantics (any element of
a list matches, numbers and strings never equal each other, a missing field matches only
`exists: false` and `must_not`) are unchanged, and the NULL rows are found through the same index.

Field names go into DDL (a generated expression cannot take bound parameters), so they must match
`FIELD_NAME`; values are always bound.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..errors import InvalidInput

KINDS = {"number": "numeric", "string": "text"}
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class TypedField:
    """One payload field held in a generated column."""

    field: str
    kind: str  # "number" or "string"

    @property
    def column(self) -> str:
        """Column name: a fixed prefix and a hash, so no field name can collide with id/payload."""
        return "pf_" + hashlib.sha1(self.field.encode()).hexdigest()[:16]  # noqa: S324 - a name, not a secret

    def expression(self, payload: str = "payload") -> str:
        """The generated column's expression (the field name is validated before it gets here)."""
        json_type = "number" if self.kind == "number" else "string"
        value = f"({payload} ->> '{self.field}')"
        if self.kind == "number":
            value += "::numeric"
        return f"(CASE WHEN jsonb_typeof({payload} -> '{self.field}') = '{json_type}' THEN {value} END)"


def check_typed_fields(fields: Mapping[str, str] | None) -> dict[str, TypedField]:
    """Validated {field: TypedField}; raises InvalidInput on a bad name or kind."""
    out: dict[str, TypedField] = {}
    for field, kind in (fields or {}).items():
        if not isinstance(field, str) or not FIELD_NAME.match(field):
            raise InvalidInput(
                f"filter field {field!r} cannot be indexed: use 1-63 letters, digits or '_', not starting with a digit"
            )
        if kind not in KINDS:
            raise InvalidInput(f"filter field {field!r}: kind {kind!r} is unknown; choose number or string")
        out[field] = TypedField(field, kind)
    return out


def add_columns_sql(
    table: str, table_name: str, fields: Mapping[str, TypedField], quote: Callable[[str], str]
) -> list[str]:
    """DDL adding each field's generated column and its btree index to `table` (quoted)."""
    statements = []
    for typed in fields.values():
        column = quote(typed.column)
        index = quote("mmv_ix_" + hashlib.sha1(f"{table_name}.{typed.column}".encode()).hexdigest()[:24])  # noqa: S324
        statements.append(
            f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {KINDS[typed.kind]} "
            f"GENERATED ALWAYS AS {typed.expression()} STORED"
        )
        statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {table} ({column})")
    return statements


def typed_condition(typed: TypedField, column_test: str, jsonb_test: str) -> str:
    """The column where it holds the field's scalar, the JSONB test where it is NULL (never NULL itself)."""
    column = typed.column
    return f"(({column} IS NOT NULL AND {column_test}) OR ({column} IS NULL AND {jsonb_test}))"
