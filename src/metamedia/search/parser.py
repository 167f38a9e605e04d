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
- Origin: "french films", "korean thriller", "british comedy" set `languages` (ISO 639-1) or
  `countries`; the word stays in the text, since it can be a topic too ("italian mafia").
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
import re

from ..errors import InvalidQuery
from . import lexicon as lx
from .grammar import (
    Effect,
    Hit,
    Rule,
    _as_int,
    _candidates,
    _normalize,
    _resolve,
    _select,
    _table_rules,
    _text_tokens,
    _unique,
    _word,
)
from .query import MAX_QUERY_CHARS, PEOPLE_NOTE, ParsedQuery
from .rules import _BASE_RULES

__all__ = ["MAX_QUERY_CHARS", "PEOPLE_NOTE", "ParsedQuery", "parse_query"]

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


# "french films", "korean thriller": the word stays in the text too (it may be a topic: "italian mafia").
_ORIGIN_RULES = [
    rule
    for f, (langs, countries) in lx.ORIGIN_WORDS.items()
    for rule in _table_rules([f], Effect(languages=langs, countries=countries), keep=True)
]

_ALL_RULES: list[Rule] = [
    *_BASE_RULES,
    *_ORIGIN_RULES,
    Rule(_word(_TITLE), _title),
    Rule(_BUT, _title_but),
    Rule(_word(_PERSON), _person),
    Rule(_PERSON_WITH, _person),
]


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
        languages=_unique(lang for e in effects for lang in e.languages),
        countries=_unique(c for e in effects for c in e.countries),
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
