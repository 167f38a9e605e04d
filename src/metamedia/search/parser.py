"""Offline natural-language query understanding: "dark 90s thrillers under 2 hours" -> filters + text.

`parse_query` is deterministic and needs no network and no model. It runs every rule (a regular
expression plus an interpretation) over the query, keeps the leftmost-longest non-overlapping matches
like a lexer, applies them in order of appearance and leaves the rest as semantic text.

Decisions a caller may notice:
- Genre and mood words come from `lexicon`. "funny" is Comedy (a genre); "space", "aliens"... are not
  genre words and stay in the text. "war" counts only in the singular, so "Star Wars" stays in the text.
- Titles are kept verbatim and never read as filters when quoted (`"the dark knight"`) or after
  "like"/"similar to"/"such as" ("tv series like breaking bad" -> text "breaking bad"), unless what
  follows is only filter words ("something like a cozy mystery" is a mystery, not a title).
- Years: "from/in/of 1995" is that year; "before 2000" -> year_max 1999; "after 2010" -> year_min 2011;
  "since 2015"/"2015 onwards" -> year_min 2015; "around 1995" -> 1993..1997; "the 80s and 90s" ->
  1980..1999 (several years or decades widen to cover them all). A reversed range ("2015-2010") is
  swapped, not rejected. "set in the 1920s" is about the setting, so it stays in the text.
- Vague words yield to explicit ones: "recent"/"new"/"latest" = the last 3 years, "modern" = 2000 on,
  "classic"/"old" = up to 1979, "short" = at most 90 min, "long"/"epic" = at least 150 min,
  "highly rated"/"acclaimed"/"best" = rating 7.5; "classic 90s movies" is 1990..1999.
- Contradictory explicit constraints ("before 1990 after 2000"): the last one mentioned wins.
  Ordinary text never raises; only a query longer than 500 characters raises InvalidQuery.
- "rated above 7" means rating_min 7 (TMDB 0..10 scale); "4 stars out of 5" and "4/5" are rescaled to
  8; "good" sets no rating. A bare duration ("a 90 minute movie") or "around 2 hours" means +-15 min.
- Excluded genres: "no horror", "not a comedy", "without romance". An exclusion that names one genre
  wins over any inclusion ("scary but no horror" excludes Horror and asks for none); a compound yields
  to a genre asked for by name ("comedy but no rom-com" excludes Romance only). A softened negation
  ("not too scary") and a negated mood ("not dark") exclude nothing and are dropped from the text.
- Titles to search from: "like X", "similar to X" and "X but darker" set `similar_to` = X (kept in the
  text too, for when X is not in the catalog).
- People: "starring X", "directed by Y", "movies with Tom Hanks" are taken out of the text and set
  `people` and a `notes` line: the catalog has no cast or crew.
- "new"/"old" count as era words only before a media noun or genre ("old westerns") or at the end, so
  "new york" and "an old house" stay in the text. Mentioning both movies and TV leaves media_type unset.
- Text: request words ("show me", "something", "please"...) and media nouns are removed anywhere;
  connectives ("with", "about", "the"...) only at the edges: "space adventure with aliens" ->
  Science Fiction (implied by "space"/"aliens", which stay in the text) + Adventure, text "space with aliens".
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidQuery
from . import lexicon as lx

MAX_QUERY_CHARS = 500
PEOPLE_NOTE = (
    "people (cast and crew) are not indexed: {names} was not searched; results match the rest of the query"
)


@dataclass
class ParsedQuery:
    """What a free-text search query asks for: structured filters plus the text left to embed."""

    raw: str
    text: str = ""  # what stays as semantic text once the structured parts are taken out
    genres: list[str] = field(default_factory=list)  # canonical GENRES, order of appearance
    exclude_genres: list[str] = field(default_factory=list)
    moods: list[str] = field(default_factory=list)  # from MOODS
    year_min: int | None = None
    year_max: int | None = None
    runtime_min: int | None = None  # minutes
    runtime_max: int | None = None
    rating_min: float | None = None  # TMDB 0..10 scale
    media_type: str | None = None  # "movie" | "tv"
    similar_to: str | None = None  # "movies like X", "X but darker": X, to resolve to a catalog item
    people: list[str] = field(default_factory=list)  # "starring X", "directed by Y": not indexed
    notes: list[str] = field(default_factory=list)  # what the search could not honour, in words

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (the "query" field of the HTTP search response)."""
        return asdict(self)

    def is_empty(self) -> bool:
        """True when there is nothing at all to search on: no text and no filter."""
        return not (self.text or self.genres or self.exclude_genres or self.moods or self.media_type) and all(
            v is None
            for v in (self.year_min, self.year_max, self.runtime_min, self.runtime_max, self.rating_min)
        )


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


# ---- years --------------------------------------------------------------------------------------

_YEAR = r"(?:18[89][0-9]|19[0-9]{2}|20[0-9]{2})"
_DECADE_WORDS = _alt(w.replace(" ", r"[\s-]+") for w in lx.DECADE_WORDS)
_ANCHOR = (
    rf"(?:the\s+)?(?:(?:early|mid|late)[\s-]*)?(?:(?:18|19|20)?[0-9]0'?s|'[0-9]0'?s|{_DECADE_WORDS})(?!\w)"
    rf"|{_YEAR}(?!\w)"
)
_ANCHOR_PARTS = re.compile(
    r"(?:the\s+)?(?:(?P<part>early|mid|late)[\s-]*)?(?:(?P<digits>'?[0-9]+)'?(?P<s>s)?|(?P<word>.+))",
    re.IGNORECASE,
)
_NUMBER_WORDS = _alt(w.replace(" ", r"\s+") for w in sorted(lx.NUMBER_WORDS, key=len, reverse=True))


def _anchor_years(text: str) -> tuple[int, int]:
    """First and last year of "1995", "the 90s", "'80s", "early nineties", "2000s"."""
    m = _ANCHOR_PARTS.fullmatch(text.strip())
    if m is None:  # the rule patterns only hand over anchors, so this is a programming error
        raise ValueError(f"not a year or decade: {text!r}")
    if m.group("word"):
        start = lx.DECADE_WORDS[re.sub(r"[\s-]+", " ", m.group("word").lower())]
    else:
        digits = m.group("digits").lstrip("'")
        if not m.group("s"):
            return int(digits), int(digits)
        start = int(digits) if len(digits) == 4 else (1900 if int(digits) >= 20 else 2000) + int(digits)
    part = (m.group("part") or "").lower()
    offsets = {"early": (0, 3), "mid": (3, 6), "late": (6, 9)}.get(part, (0, 9))
    return start + offsets[0], start + offsets[1]


_YEAR_PHRASE = (
    r"(?:(?:(?P<before>before|prior\s+to|pre|earlier\s+than|older\s+than)"
    r"|(?P<until>until|till|up\s+to|through|thru|no\s+later\s+than)"
    r"|(?P<after>after|post|later\s+than|newer\s+than|more\s+recent\s+than)"
    r"|(?P<since>since|starting\s+(?:in|from))|(?P<around>circa|around)|in|from|of|during)[\s-]*)?"
    rf"(?P<a>{_ANCHOR})"
    r"(?:\s*(?P<later>\+|(?:or|and)\s+(?:later|newer|after|up|beyond|onwards?)|onwards?"
    r"|on(?=\s*(?:[,.;!?]|\Z)))|\s+(?P<earlier>(?:or|and)\s+(?:earlier|older|before)))?"
)
_YEAR_RANGE = (
    rf"(?:(?:from|between|in)\s+)?(?P<a>{_ANCHOR})"
    rf"(?:\s*(?:-|to|and|or|until|till|through|thru)\s*(?P<b>{_ANCHOR})|-(?P<b2>[0-9]{{2}}))"
)


def _year_phrase(m: re.Match[str], today: dt.date) -> Hit:
    lo, hi = _anchor_years(m.group("a"))
    if m.group("later") or m.group("since"):
        bound = Bound(lo=lo)
    elif m.group("earlier") or m.group("until"):
        bound = Bound(hi=hi)
    elif m.group("before"):
        bound = Bound(hi=lo - 1)
    elif m.group("after"):
        bound = Bound(lo=hi + 1)
    elif m.group("around"):
        bound = Bound(lo - 2, hi + 2, span=True)
    else:
        bound = Bound(lo, hi, span=True)
    return Hit(m.start(), m.end(), Effect(year=bound))


def _year_range(m: re.Match[str], today: dt.date) -> Hit:
    lo, hi = _anchor_years(m.group("a"))
    if m.group("b2"):
        end = lo // 100 * 100 + int(m.group("b2"))
        end += 100 if end < lo else 0  # "1995-05" is 1995..2005
    else:
        end = _anchor_years(m.group("b"))[1]
    return Hit(m.start(), m.end(), Effect(year=Bound(min(lo, end), max(hi, end), span=True)))


def _relative_years(make: Callable[[re.Match[str], int], Bound]) -> Interpreter:
    def interpret(m: re.Match[str], today: dt.date) -> Hit:
        return Hit(m.start(), m.end(), Effect(year=make(m, today.year)))

    return interpret


def _count(word: str) -> int:
    return int(word) if word.isdigit() else lx.NUMBER_WORDS[re.sub(r"\s+", " ", word.lower())]


_ON = r"(?:(?:in|from|of|over|within|during)\s+)?(?:the\s+)?"
_YEAR_RULES = [
    Rule(_word(_YEAR_RANGE), _year_range),
    Rule(_word(_YEAR_PHRASE), _year_phrase),
    Rule(_word(_ON + r"this\s+year"), _relative_years(lambda m, y: Bound(y, y, span=True))),
    Rule(_word(_ON + r"last\s+year"), _relative_years(lambda m, y: Bound(y - 1, y - 1, span=True))),
    Rule(
        _word(_ON + rf"(?:last|past|previous)\s+(?P<n>[0-9]{{1,2}}|{_NUMBER_WORDS})\s+years"),
        _relative_years(lambda m, y: Bound(lo=y - _count(m.group("n")))),
    ),
    Rule(_word(_ON + r"(?:last|past)\s+decade"), _relative_years(lambda m, y: Bound(lo=y - 10))),
    Rule(_word(_ON + r"this\s+decade"), _relative_years(lambda m, y: Bound(lo=y // 10 * 10))),
    *_phrase_rules(lx.RECENT_WORDS, _relative_years(lambda m, y: Bound(lo=y - lx.RECENT_YEARS, soft=True))),
    # A setting, not a release date: kept in the text.
    Rule(_word(rf"set\s+(?:in|during)\s+(?:{_ANCHOR})"), _static(Effect(), keep=True)),
]

# ---- runtime ------------------------------------------------------------------------------------

_HALF = r"\s+and\s+a\s+half"
_RUNTIME = (
    r"(?:(?:with\s+)?(?:an?\s+)?(?:runtime|running\s+time|length)(?:\s+of)?\s*)?"
    r"(?:(?P<max>under|less\s+than|shorter\s+than|below|at\s+most|no\s+(?:more|longer)\s+than"
    r"|not\s+(?:over|more\s+than|longer\s+than)|max(?:imum)?(?:\s+of)?|up\s+to|within)"
    r"|(?P<min>over|more\s+than|longer\s+than|above|at\s+least|min(?:imum)?(?:\s+of)?|no\s+(?:less|shorter)\s+than)"
    r"|(?P<around>around|about|roughly|approx(?:imately|\.)?|~|close\s+to|nearly))?\s*"
    r"(?:(?P<count>[0-9]+(?:\.[0-9]+)?|an?|one|two|three|four|five|half(?:\s+an?)?)"
    rf"(?P<half1>{_HALF})?[\s-]*(?:hours?|hrs?|h)(?P<half2>{_HALF})?"
    r"(?:[\s,]*(?:and\s+)?(?P<hmin>[0-9]+)[\s-]*(?:minutes?|mins?|m))?"
    r"|(?P<mins>[0-9]+)[\s-]*(?:minutes?|mins?|m))"
    r"(?:\s*(?P<suf_max>or\s+(?:less|under|shorter)|max|tops)|\s*(?P<suf_min>or\s+(?:more|longer|over)|plus|\+))?"
    r"(?:\s+(?:long|in\s+length))?"
)


def _duration_minutes(m: re.Match[str]) -> float:
    if m.group("mins"):
        return float(m.group("mins"))
    count = m.group("count").lower()
    if count.startswith("half"):
        hours = 0.5
    elif count[0].isdigit():
        hours = float(count)
    else:
        hours = float(lx.NUMBER_WORDS[count])
    hours += 0.5 if (m.group("half1") or m.group("half2")) else 0.0
    return hours * 60 + float(m.group("hmin") or 0)


def _runtime(m: re.Match[str], today: dt.date) -> Hit | None:
    minutes = _duration_minutes(m)
    if minutes <= 0:
        return None
    if m.group("max") or m.group("suf_max"):
        bound = Bound(hi=minutes)
    elif m.group("min") or m.group("suf_min"):
        bound = Bound(lo=minutes)
    else:  # "around 2 hours", or a bare "90 minute movie"
        slack = lx.AROUND_RUNTIME_SLACK
        bound = Bound(max(1.0, minutes - slack), minutes + slack, span=True)
    return Hit(m.start(), m.end(), Effect(runtime=bound))


_RUNTIME_RULES = [
    Rule(_word(_RUNTIME), _runtime),
    *_table_rules(lx.SHORT_WORDS, Effect(runtime=Bound(hi=lx.SHORT_RUNTIME_MAX, soft=True))),
    *_table_rules(lx.LONG_WORDS, Effect(runtime=Bound(lo=lx.LONG_RUNTIME_MIN, soft=True))),
]

# ---- rating -------------------------------------------------------------------------------------

_N = r"(?P<n>10(?:\.0+)?|[0-9](?:\.[0-9]+)?)(?![0-9])"
_SCALE = (
    r"(?:\s*(?:/|out\s+of)\s*(?P<scale>10|5)(?![0-9])(?:\s+stars?)?|\s*stars?(?:\s+out\s+of\s+(?P<scale2>10|5)(?![0-9]))?"
    r"|\s*points?)"
)
_AT_LEAST = (
    r"(?:above|over|at\s+least|>=?|≥|higher\s+than|greater\s+than|more\s+than|better\s+than"
    r"|min(?:imum)?(?:\s+of)?|no\s+less\s+than|of\s+at\s+least)"
)
_OR_MORE = r"(?:\s*\+|\s+(?:or|and)\s+(?:more|higher|better|above|up|over))"
_RATED = (
    r"(?:(?:with\s+)?(?:an?\s+)?(?:(?:imdb|tmdb|user|audience|critics?)\s+)?(?:rating|score)(?:\s+of)?"
    r"|(?:(?:highly|top|best|well)[\s-]+)?rated|scored|scoring)"
)
_RATING_PATTERNS = (
    rf"{_RATED}\s*(?:{_AT_LEAST}\s*)?{_N}{_SCALE}?{_OR_MORE}?",
    rf"{_AT_LEAST}\s*{_N}{_SCALE}(?:\s+(?:rating|score))?{_OR_MORE}?",
    rf"{_N}{_SCALE}{_OR_MORE}?(?:\s+(?:rating|score))?",
    rf"{_N}\s*\+\s*(?:rating|score|stars?|rated)",
)


def _rating(m: re.Match[str], today: dt.date) -> Hit | None:
    groups = m.groupdict()
    scale = groups.get("scale") or groups.get("scale2") or "10"
    value = float(m.group("n")) * (2.0 if scale == "5" else 1.0)
    if not 0 <= value <= 10:
        return None
    return Hit(m.start(), m.end(), Effect(rating=Bound(lo=value)))


_RATING_RULES = [
    *(Rule(_word(p), _rating) for p in _RATING_PATTERNS),
    *_table_rules(lx.ACCLAIMED_WORDS, Effect(rating=Bound(lo=lx.ACCLAIMED_RATING, soft=True))),
]

# ---- genres, moods, media, era words, fillers -----------------------------------------------------

_GENRE_RULES = [rule for f, g in lx.GENRE_WORDS.items() for rule in _table_rules([f], Effect(genres=g))]
_MOOD_RULES = [
    *(rule for f, mood in lx.MOOD_WORDS.items() for rule in _table_rules([f], Effect(moods=(mood,)))),
    *(
        rule
        for f, (mood, g) in lx.MOOD_GENRE_WORDS.items()
        for rule in _table_rules([f], Effect(g, moods=(mood,)))
    ),
]
_MEDIA_WORDS = _alt([*lx.TV_WORDS, *lx.MOVIE_WORDS])
# "new"/"old" are era words only before a media noun or genre (within two words) or at the very end.
_MODIFIES_MEDIA = (
    rf"(?=\s*(?:[,.;!?]|\Z)|\s+(?:\S+\s+){{0,2}}?(?:{_MEDIA_WORDS}|{_alt(lx.GENRE_WORDS)})(?!\w))"
)

_TOPIC_RULES = [
    *_GENRE_RULES,
    *(
        rule
        for f, g in lx.GENRE_WORDS_KEPT_IN_TEXT.items()
        for rule in _table_rules([f], Effect(g), keep=True)
    ),
    *_MOOD_RULES,
    *(rule for f, g in lx.TV_WORDS.items() for rule in _table_rules([f], Effect(g, media_type="tv"))),
    *(rule for f, g in lx.MOVIE_WORDS.items() for rule in _table_rules([f], Effect(g, media_type="movie"))),
    *_table_rules(lx.MODERN_WORDS, Effect(year=Bound(lo=lx.MODERN_YEAR_MIN, soft=True))),
    *_table_rules(
        [*lx.CLASSIC_WORDS, lx.OLD_WORD + _MODIFIES_MEDIA],
        Effect(year=Bound(hi=lx.CLASSIC_YEAR_MAX, soft=True)),
    ),
    Rule(
        _word(lx.NEW_WORD + _MODIFIES_MEDIA),
        _relative_years(lambda m, y: Bound(lo=y - lx.RECENT_YEARS, soft=True)),
    ),
    *_table_rules(lx.PROTECTED_PHRASES, Effect(), keep=True),
    *_table_rules(lx.FILLER_PHRASES, Effect()),
]

_ITEM = rf"(?:{_alt([*lx.GENRE_WORDS, *lx.MOOD_WORDS])})(?!\w)(?:\s+(?:movies?|films?|shows|stuff|ones))?"
_ARTICLES = r"(?:(?:an?|any|the)\s+)*"
_NEGATION = (
    rf"(?:{lx.NEGATORS})(?:\s+|\s*-\s*)(?P<degree>(?:too|very|so|overly|that)\s+)?{_ARTICLES}{_ITEM}"
    rf"(?:(?:\s*[,/&]\s*|\s+(?:or|nor|and)\s+){_ARTICLES}{_ITEM}){{0,6}}"
)


def _negation(m: re.Match[str], today: dt.date) -> Hit:
    if m.group("degree"):  # "not too scary" softens the request; it does not rule Horror out
        return Hit(m.start(), m.end(), Effect())
    hits = _select(_candidates(m.group(0), today, _GENRE_RULES))
    excluded = [g for hit in hits for g in hit.effect.genres]
    # A word naming one genre ("no horror") beats any inclusion; a compound ("no rom-com") yields
    # to a genre asked for by name ("comedy but no rom-com" still wants Comedy).
    strong = [g for hit in hits if len(hit.effect.genres) == 1 for g in hit.effect.genres]
    return Hit(m.start(), m.end(), Effect(exclude_genres=tuple(excluded), strong_excludes=tuple(strong)))


def _quoted(m: re.Match[str], today: dt.date) -> Hit:
    return Hit(m.start(), m.end(), Effect(), keep=(m.start("title"), m.end("title")))


_BASE_RULES: list[Rule] = [
    *_YEAR_RULES,
    *_RUNTIME_RULES,
    *_RATING_RULES,
    *_TOPIC_RULES,
    Rule(_word(_NEGATION), _negation),
    Rule(re.compile(r'"(?P<title>[^"]+)"'), _quoted),
]

# ---- titles after "like ..." ----------------------------------------------------------------------

_TITLE = (
    r"(?:like|similar\s+to|such\s+as|in\s+the\s+(?:style|vein|spirit)\s+of|reminiscent\s+of|a\s+la|à\s+la)"
    r"\s+(?:\"(?P<quoted>[^\"]+)\"|(?P<title>[^,;.!?()\[\]\"]+?)"
    r"(?=\s*(?:[,;.!?()\[\]\"]|\Z)|\s+(?:but|from|in|under|over|before|after|since|between|rated|that|which"
    r"|without|not|no|for|during|set|released|made|except|with\s+(?:a\s+)?(?:rating|runtime|score))(?!\w)))"
)
_DESCRIPTION_START = re.compile(
    r"(?:a|an|some|something|any|anything|one|those|that|this|more|other)(?!\w)", re.I
)


def _title(m: re.Match[str], today: dt.date) -> Hit | None:
    if m.group("quoted"):
        return Hit(m.start(), m.end(), Effect(similar_to=True), keep=(m.start("quoted"), m.end("quoted")))
    title = m.group("title")
    if _DESCRIPTION_START.match(title) or not _text_tokens(
        title, _select(_candidates(title, today, _BASE_RULES))
    ):
        return None  # "like a cozy mystery", "like funny cartoons": a description, parse it
    return Hit(m.start(), m.end(), Effect(similar_to=True), keep=(m.start("title"), m.end("title")))


# "the matrix but darker", "toy story but for adults": a title, then how the result should differ.
_BUT = re.compile(
    r"\A\s*(?P<title>[^,;!?\"]+?)\s+but\s+(?=(?:darker|funnier|scarier|lighter|sadder|happier|gentler|"
    r"more|less|with|without|set|shorter|longer|newer|older|for|in\s+space|as)(?!\w))",
    re.IGNORECASE,
)


def _title_but(m: re.Match[str], today: dt.date) -> Hit | None:
    title = m.group("title")
    if _DESCRIPTION_START.match(title) or not _text_tokens(
        title, _select(_candidates(title, today, _BASE_RULES))
    ):
        return None  # "comedy but without romance": only filter words before "but"
    return Hit(m.start("title"), m.end(), Effect(similar_to=True), keep=(m.start("title"), m.end("title")))


# People are not in the catalog: the phrase is taken out of the text and noted in the response.
_PERSON = (
    r"(?:starring|featuring|feat\.?|directed\s+by|written\s+by|(?:by|from)\s+(?:the\s+)?director"
    r"|(?:with|by)\s+(?:the\s+)?(?:actor|actress|director)|(?:movies?|films?)\s+by)"
    r"\s+(?!(?:the|a|an|my|our|your|his|her|their)\s)(?P<name>[^\W\d_][\w.'-]*(?:\s+[^\W\d_][\w.'-]*){0,3}?)"
    r"(?=\s*(?:[,;.!?]|\Z)|\s+(?:and|in|from|before|after|since|under|over|with|without|rated|set)(?!\w))"
)
# "movies with Tom Hanks": a capitalised first and last name after "with" (case matters here).
_PERSON_WITH = re.compile(
    r"(?<!\w)(?:with|starring)\s+(?P<name>[A-Z][a-z'-]+(?:\s+(?:de|van|von|del|di|da|le|la))?\s+[A-Z][a-z'-]+)(?!\w)"
)


def _person(m: re.Match[str], today: dt.date) -> Hit:
    return Hit(m.start(), m.end(), Effect(person=" ".join(m.group("name").split())))


_ALL_RULES: list[Rule] = [
    *_BASE_RULES,
    Rule(_word(_TITLE), _title),
    Rule(_BUT, _title_but),
    Rule(_word(_PERSON), _person),
    Rule(_PERSON_WITH, _person),
]

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
    for index, rule in enumerate(rules):
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


def parse_query(query: str, *, today: dt.date | None = None) -> ParsedQuery:
    """Split a free-text query into filters (genres, moods, years, runtime, rating, type) and text.

    `today` anchors relative words ("recent", "last year"); it defaults to `date.today()`.
    Raises InvalidQuery for a query longer than 500 characters (or not a string); never for its content.
    """
    if not isinstance(query, str):
        raise InvalidQuery(f"query must be a string, got {type(query).__name__}")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidQuery(f"query is {len(query)} characters long; at most {MAX_QUERY_CHARS} are allowed")
    text = _normalize(query)
    hits = _select(_candidates(text, today or dt.date.today(), _ALL_RULES))
    effects = [hit.effect for hit in hits]
    genres = _unique(g for e in effects for g in e.genres)
    media_types = _unique(e.media_type for e in effects if e.media_type)
    year_min, year_max = _resolve([e.year for e in effects if e.year])
    runtime_min, runtime_max = _resolve([e.runtime for e in effects if e.runtime])
    rating_min, _ = _resolve([e.rating for e in effects if e.rating])
    strong = {g for e in effects for g in e.strong_excludes}
    excluded = [
        g for g in _unique(g for e in effects for g in e.exclude_genres) if g in strong or g not in genres
    ]
    genres = [g for g in genres if g not in strong]
    similar = [" ".join(text[h.keep[0] : h.keep[1]].split()) for h in hits if h.effect.similar_to and h.keep]
    people = _unique(e.person for e in effects if e.person)
    notes = [PEOPLE_NOTE.format(names=", ".join(people))] if people else []
    return ParsedQuery(
        raw=query,
        text=" ".join(_text_tokens(text, hits)),
        similar_to=similar[0] if similar else None,
        people=people,
        notes=notes,
        genres=genres,
        exclude_genres=excluded,
        moods=_unique(m for e in effects for m in e.moods),
        year_min=_as_int(year_min),
        year_max=_as_int(year_max),
        runtime_min=_as_int(runtime_min),
        runtime_max=_as_int(runtime_max),
        rating_min=rating_min,
        media_type=media_types[0] if len(media_types) == 1 else None,
    )
