"""The query parser's base rules: years, runtimes, ratings, genres, moods, media words, negations."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from . import lexicon as lx
from .grammar import (
    Bound,
    Effect,
    Hit,
    Interpreter,
    Rule,
    _alt,
    _candidates,
    _phrase_rules,
    _select,
    _static,
    _table_rules,
    _word,
)

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
