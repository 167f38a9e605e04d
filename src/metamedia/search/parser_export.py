"""The query parser's tables and rules as JSON, for the offline web app's JS port (static/offline/parser.js).

Generated from the parser itself: every rule of `parser._ALL_RULES`, in order, with its regular
expression translated to JavaScript syntax and its interpretation named (a fixed effect, or one of
the parser's interpreters), plus the lexicon tables the interpreters read. `python -m
metamedia.search.parser_export` rewrites the committed file; a test fails when it is stale, and the
shared golden queries (tests/data/golden_queries.json) are checked against both parsers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import grammar as g
from . import lexicon as lx
from . import parser as p
from . import rules as rl

TABLES_FILE = Path(__file__).resolve().parents[1] / "web" / "static" / "offline" / "parser-tables.json"
_NAMED_KINDS = {
    "_year_phrase": "year_phrase",
    "_year_range": "year_range",
    "_runtime": "runtime",
    "_rating": "rating",
    "_negation": "negation",
    "_quoted": "quoted",
    "_title": "title",
    "_title_but": "title_but",
    "_person": "person",
}


class _Probe:
    """A stand-in match for probing a relative-years interpreter: group("n") answers a fixed count."""

    def __init__(self, n: str) -> None:
        self.n = n

    def group(self, name: str) -> str:
        return self.n


def js_regex(pattern: str) -> str:
    """Python regex syntax -> JavaScript (named groups, string anchors)."""
    out = pattern.replace("(?P<", "(?<").replace(r"\Z", "$").replace(r"\A", "^")
    if "(?P=" in out or "(?#" in out:
        raise ValueError(f"pattern uses syntax the JS port does not translate: {pattern[:80]}")
    return out


def _bound(b: g.Bound | None) -> dict[str, Any] | None:
    return None if b is None else asdict(b)


def _effect(e: g.Effect) -> dict[str, Any]:
    out = asdict(e)
    for key in ("year", "runtime", "rating"):
        out[key] = _bound(getattr(e, key))
    return {k: v for k, v in out.items() if v not in (None, (), [], False)}


def _closure(fn: Any) -> dict[str, Any]:
    return {
        name: cell.cell_contents
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True)
    }


def _relative(make: Any) -> dict[str, Any]:
    """Describe `make(m, year)` as lo/hi formulas: ["offset", d] (year + d), ["minus_n"], ["decade"]."""
    one_2020, one_2025, two_2020 = make(_Probe("1"), 2020), make(_Probe("1"), 2025), make(_Probe("2"), 2020)
    out: dict[str, Any] = {"soft": one_2020.soft, "span": one_2020.span}
    for side in ("lo", "hi"):
        a, b, c = getattr(one_2020, side), getattr(one_2025, side), getattr(two_2020, side)
        if a is None:
            out[side] = None
        elif a != c:
            out[side] = ["minus_n"]
        elif b - a == 5:
            out[side] = ["offset", a - 2020]
        elif a == b == 2020:
            out[side] = ["decade"]
        else:
            raise ValueError("relative-years rule the JS port does not know")
    return out


def _rule(rule: g.Rule) -> dict[str, Any]:
    fn = rule.interpret
    name = fn.__qualname__
    out: dict[str, Any] = {
        "pattern": js_regex(rule.pattern.pattern),
        "flags": "i" if rule.pattern.flags & re.IGNORECASE else "",
    }
    if name.startswith("_static."):
        cells = _closure(fn)
        out.update(kind="static", effect=_effect(cells["effect"]), keep=bool(cells["keep"]))
    elif name.startswith("_relative_years."):
        out.update(kind="relative", year=_relative(_closure(fn)["make"]))
    elif name in _NAMED_KINDS:
        out["kind"] = _NAMED_KINDS[name]
    else:
        raise ValueError(f"rule interpreter {name} has no JS counterpart")
    return out


def parser_tables() -> dict[str, Any]:
    """Everything the JS port needs, derived from the Python parser."""
    rules = [_rule(r) for r in p._ALL_RULES]
    genre_rules = [_rule(r) for r in rl._GENRE_RULES]
    return {
        "generated_by": "python -m metamedia.search.parser_export",
        "max_query_chars": p.MAX_QUERY_CHARS,
        "people_note": p.PEOPLE_NOTE,
        "rules": rules,
        "base_rule_count": len(rl._BASE_RULES),
        "genre_rules": genre_rules,
        "anchor_parts": js_regex(rl._ANCHOR_PARTS.pattern),
        "description_start": js_regex(p._DESCRIPTION_START.pattern),
        "same_length": {chr(k): v for k, v in sorted(g._SAME_LENGTH.items())},
        "edge_words": sorted(lx.EDGE_WORDS),
        "number_words": lx.NUMBER_WORDS,
        "decade_words": lx.DECADE_WORDS,
        "around_runtime_slack": lx.AROUND_RUNTIME_SLACK,
    }


def render() -> str:
    return json.dumps(parser_tables(), indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def golden_today(golden: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(golden["today"])


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description="Write the parser tables JSON for the offline web app")
    cli.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    args = cli.parse_args(argv)
    text = render()
    if args.check:
        current = TABLES_FILE.read_text(encoding="utf-8") if TABLES_FILE.is_file() else ""
        return 0 if current == text else 1
    TABLES_FILE.parent.mkdir(parents=True, exist_ok=True)
    TABLES_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLES_FILE.name}: {len(text)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
