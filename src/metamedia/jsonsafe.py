"""Bounds on every JSON value metamedia accepts: nesting depth, finite numbers of sane magnitude.

`loads` parses a request body with those bounds (HTTP and MCP JSON-RPC bodies go through it before
any route runs); `check_value` applies the same bounds to a value that arrived another way (the
Python API, the CLI, MCP over stdio) and is called by the write paths before their first statement.
A violation is InvalidInput (422) and nothing is written.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InvalidInput

MAX_DEPTH = 40
"""Deepest nesting of objects and arrays in one JSON value (the body itself is level 1); a search
filter nested to its own limit (16 groups) fits."""
MAX_NUMBER = 1e15
"""Largest magnitude of a JSON number with a fraction or exponent (ids are integers, up to 2**63)."""
MAX_INTEGER_DIGITS = 20


class JsonLimitExceeded(InvalidInput):
    """A JSON value is nested too deep or holds a non-finite or absurdly large number."""


def _constant(name: str) -> Any:
    raise JsonLimitExceeded(f"{name} is not a number JSON allows; send a finite number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise JsonLimitExceeded(f"number {text[:40]} is out of range (|x| <= {MAX_NUMBER:g})")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise JsonLimitExceeded(f"integer {text[:40]}... has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def loads(data: bytes | str) -> Any:
    """Parse JSON with metamedia's bounds; JsonLimitExceeded when a bound is broken.

    Malformed JSON raises json.JSONDecodeError (a ValueError) as usual, so callers can answer it
    their own way (a 422 from FastAPI, a JSON-RPC parse error from MCP).
    """
    try:
        value = json.loads(data, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError as exc:
        raise JsonLimitExceeded(f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    check_value(value)
    return value


def check_value(value: Any, where: str = "value") -> Any:
    """Raise JsonLimitExceeded unless `value` is within the bounds; returns it unchanged.

    Walks without recursion, so a hostile value cannot exhaust the stack here.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, where)]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict | list | tuple):
            if depth > MAX_DEPTH:
                raise JsonLimitExceeded(f"{path}: nested deeper than {MAX_DEPTH} levels")
            children = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in children:
                if isinstance(child, dict | list | tuple | float) or (
                    isinstance(child, int) and not isinstance(child, bool)
                ):
                    stack.append((child, depth + 1, f"{path}.{key}" if len(path) < 200 else path))
        elif isinstance(node, float):
            if not math.isfinite(node) or abs(node) > MAX_NUMBER:
                raise JsonLimitExceeded(f"{path}: {node!r} is not a finite number within ±{MAX_NUMBER:g}")
        elif isinstance(node, int) and not isinstance(node, bool) and abs(node) >= 2**63:
            raise JsonLimitExceeded(f"{path}: integer out of the 64-bit range")
    return value
