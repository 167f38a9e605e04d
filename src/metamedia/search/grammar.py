"""The machinery of the query parser: rules (a pattern and an interpretation), their effects, and the
lexer-like scan that keeps the leftmost-longest non-overlapping matches and leaves the rest as text."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from re import _parser as re_parser  # type: ignore[attr-defined]  # the stdlib regex parser (3.11+)

from . import lexicon as lx


@dataclass(frozen=True)
class Bound:
    """One constraint on a number: lo..hi, either open. Spans (a decade) widen each other; limits narrow."""

    lo: float | None = None
    hi: float | None = None
    soft: bool = False  # a vague word ("recent", "short"), ignored when an explicit constraint exists
    span: bool = False


@dataclass(frozen=True)
class Effect:
    """What one matched phrase contributes to the parse."""

    genres: tuple[str, ...] = ()
    exclude_genres: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    media_type: str | None = None
    year: Bound | None = None
    runtime: Bound | None = None
    rating: Bound | None = None
    similar_to: bool = False  # the kept span names a title to search from
    strong_excludes: tuple[str, ...] = ()  # excluded by name ("no horror"), so they beat inclusions
    person: str | None = None
    languages: tuple[str, ...] = ()  # original languages asked for ("french films")
    countries: tuple[str, ...] = ()  # production countries asked for ("british comedy")


@dataclass(frozen=True)
class Hit:
    """A rule match: the span it consumes, its effect, and the sub-span left in the text (if any)."""

    start: int
    end: int
    effect: Effect
    keep: tuple[int, int] | None = None


Interpreter = Callable[[re.Match[str], dt.date], Hit | None]


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    interpret: Interpreter
    # The ASCII text every match starts with, lower-cased ("" = none known): an ASCII query that
    # lacks it cannot match, so the scan skips the rule (most of the 300-odd rules, on most queries).
    needs: str = field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "needs", _literal_prefix(self.pattern))


def _literal_prefix(pattern: re.Pattern[str]) -> str:
    """The literal characters every match of `pattern` begins with, when they are plain ASCII."""
    chars: list[str] = []

    def walk(items: list[tuple[object, object]]) -> bool:  # False once the prefix stops being literal
        for op, arg in items:
            name = str(op)
            if name in ("ASSERT", "ASSERT_NOT", "AT"):  # zero-width: consumes nothing
                continue
            if name == "SUBPATTERN" and isinstance(arg, tuple):
                if not walk(list(arg[3])):
                    return False
                continue
            if name == "LITERAL" and isinstance(arg, int):
                chars.append(chr(arg))
                continue
            return False
        return True

    try:
        walk(list(re_parser.parse(pattern.pattern, pattern.flags)))
    except Exception:  # an unexpected parse shape: no gate, the rule is always scanned
        return ""
    prefix = "".join(chars).lower()
    return prefix if len(prefix) >= 2 and prefix.isascii() else ""


def _word(fragment: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w)(?:{fragment})(?!\w)", re.IGNORECASE)


def _alt(fragments: Iterable[str]) -> str:
    return "|".join(f"(?:{f})" for f in fragments)


def _alternatives(fragment: str) -> list[str]:
    """Split a lexicon fragment at its top-level "|", so each alternative competes on length with every rule.

    Lexicon fragments put no "(" or "|" inside character classes, so counting parentheses is enough.
    """
    parts: list[str] = []
    depth, start, escaped = 0, 0, False
    for i, char in enumerate(fragment):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append(fragment[start:i])
            start = i + 1
    return [*parts, fragment[start:]]


def _static(effect: Effect, keep: bool = False) -> Interpreter:
    def interpret(m: re.Match[str], today: dt.date) -> Hit:
        return Hit(m.start(), m.end(), effect, (m.start(), m.end()) if keep else None)

    return interpret


def _phrase_rules(fragments: Iterable[str], interpret: Interpreter) -> list[Rule]:
    return [Rule(_word(alternative), interpret) for f in fragments for alternative in _alternatives(f)]


def _table_rules(fragments: Iterable[str], effect: Effect, keep: bool = False) -> list[Rule]:
    return _phrase_rules(fragments, _static(effect, keep))


# ---- scanning -----------------------------------------------------------------------------------

_SAME_LENGTH = str.maketrans(
    {
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033", '"'),
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032`\u00b4", "'"),
    }
    | dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-")
)


def _normalize(query: str) -> str:
    return unicodedata.normalize("NFKC", query).translate(_SAME_LENGTH)


_FREE, _KEPT, _CONSUMED = 0, 1, 2


def _candidates(text: str, today: dt.date, rules: list[Rule]) -> list[tuple[Hit, int]]:
    found: list[tuple[Hit, int]] = []
    # On ASCII text, case-insensitive matching of ASCII literals is exactly lower-case containment.
    lowered = text.lower() if text.isascii() else None
    for index, rule in enumerate(rules):
        if lowered is not None and rule.needs and rule.needs not in lowered:
            continue
        for m in rule.pattern.finditer(text):
            hit = rule.interpret(m, today) if m.end() > m.start() else None
            if hit is not None:
                found.append((hit, index))
    return found


def _select(candidates: list[tuple[Hit, int]]) -> list[Hit]:
    """Leftmost-longest non-overlapping hits, in order of appearance (ties go to the earlier rule)."""
    chosen: list[Hit] = []
    end = 0
    for hit, _ in sorted(candidates, key=lambda c: (c[0].start, c[0].start - c[0].end, c[1])):
        if hit.start >= end:
            chosen.append(hit)
            end = hit.end
    return chosen


def _text_tokens(text: str, hits: list[Hit]) -> list[str]:
    """The words no hit consumed, punctuation trimmed, connectives trimmed at both edges.

    Words a hit keeps (titles, protected phrases) are taken verbatim and never trimmed.
    """
    state = [_FREE] * len(text)
    for hit in hits:
        keep_start, keep_end = hit.keep or (hit.end, hit.end)
        for i in range(hit.start, hit.end):
            state[i] = _KEPT if keep_start <= i < keep_end else _CONSUMED
    tokens: list[tuple[str, bool]] = []
    position = 0
    for run_state, run in itertools.groupby(state):
        length = len(list(run))
        if run_state != _CONSUMED:
            for word in text[position : position + length].split():
                if run_state == _FREE:
                    word = re.sub(r"^\W+|\W+$", "", word)
                if word:
                    tokens.append((word, run_state == _KEPT))
        position += length
    while tokens and not tokens[0][1] and tokens[0][0].casefold() in lx.EDGE_WORDS:
        tokens.pop(0)
    while tokens and not tokens[-1][1] and tokens[-1][0].casefold() in lx.EDGE_WORDS:
        tokens.pop()
    return [word for word, _ in tokens]


def _resolve(bounds: list[Bound]) -> tuple[float | None, float | None]:
    """Spans widen to cover each other, limits narrow; vague bounds count only without explicit ones."""
    chosen = [b for b in bounds if not b.soft] or bounds
    spans = [b for b in chosen if b.span]
    lo = min(b.lo for b in spans if b.lo is not None) if spans else None
    hi = max(b.hi for b in spans if b.hi is not None) if spans else None
    for b in chosen:
        if not b.span and b.lo is not None:
            lo = b.lo if lo is None else max(lo, b.lo)
        if not b.span and b.hi is not None:
            hi = b.hi if hi is None else min(hi, b.hi)
    if lo is not None and hi is not None and lo > hi:
        return chosen[-1].lo, chosen[-1].hi
    return lo, hi


def _as_int(value: float | None) -> int | None:
    return None if value is None else int(round(value))


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
