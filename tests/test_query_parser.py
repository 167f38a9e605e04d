"""Natural-language query understanding: real-looking queries, documented decisions, properties."""

from __future__ import annotations

import csv
import json
import unicodedata
from dataclasses import asdict
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metamedia.errors import InvalidQuery
from metamedia.search import lexicon
from metamedia.search.parser import MAX_QUERY_CHARS, ParsedQuery, parse_query
from metamedia.vocab import GENRES, MOODS, canonical_genres
from tests.conftest import DATA

TODAY = date(2025, 6, 15)
RECENT = TODAY.year - 3

SF = "Science Fiction"

# Each row: query -> the fields that differ from an empty parse. Every other field must stay empty.
QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("funny space movies", dict(genres=["Comedy", "Science Fiction"], media_type="movie", text="space")),
    ("space adventure with aliens", dict(genres=["Science Fiction", "Adventure"], text="space with aliens")),
    ("dark 90s thrillers", dict(genres=["Thriller"], moods=["dark"], year_min=1990, year_max=1999)),
    (
        "feel-good rom-com under 2 hours",
        dict(genres=["Romance", "Comedy"], moods=["feel-good"], runtime_max=120),
    ),
    ("highly rated sci-fi from the 80s", dict(genres=[SF], year_min=1980, year_max=1989, rating_min=7.5)),
    (
        "documentaries about climate change after 2010",
        dict(genres=["Documentary"], year_min=2011, text="climate change"),
    ),
    ("scary movies for halloween", dict(genres=["Horror"], media_type="movie", text="halloween")),
    (
        "relaxing animated films for kids",
        dict(genres=["Animation", "Family"], moods=["relaxing"], media_type="movie"),
    ),
    ("tv series like breaking bad", dict(media_type="tv", text="breaking bad", similar_to="breaking bad")),
    ("classic westerns", dict(genres=["Western"], year_max=1979)),
    ("recent horror rated above 7", dict(genres=["Horror"], year_min=RECENT, rating_min=7.0)),
    (
        "movies between 2000 and 2005 about time travel",
        dict(
            media_type="movie", year_min=2000, year_max=2005, text="time travel", genres=["Science Fiction"]
        ),
    ),
    ("intense war movies", dict(genres=["War"], moods=["intense"], media_type="movie")),
    ("short comedies", dict(genres=["Comedy"], runtime_max=90)),
    (
        "Show me some gritty crime dramas from the 70s please",
        dict(genres=["Crime", "Drama"], moods=["dark"], year_min=1970, year_max=1979),
    ),
    ("I want something uplifting to watch tonight", dict(moods=["happy"])),
    (
        "heist movies like Ocean's Eleven",
        dict(genres=["Crime"], media_type="movie", text="Ocean's Eleven", similar_to="Ocean's Eleven"),
    ),
    ("critically acclaimed foreign dramas", dict(genres=["Drama"], rating_min=7.5, text="foreign")),
    ("cozy mystery series", dict(genres=["Mystery"], moods=["relaxing"], media_type="tv")),
    ("epic fantasy adventures", dict(genres=["Fantasy", "Adventure"], runtime_min=150)),
    ("animated musicals for the whole family", dict(genres=["Animation", "Music", "Family"])),
    (
        "suspenseful psychological thrillers under 100 minutes",
        dict(genres=["Thriller"], moods=["suspenseful"], runtime_max=100, text="psychological"),
    ),
    ("zombie movies but not too scary", dict(media_type="movie", text="zombie")),
    ("nothing scary for kids", dict(genres=["Family"], exclude_genres=["Horror"])),
    ("westerns before 1960", dict(genres=["Western"], year_max=1959)),
    ("superhero movies after 2015", dict(media_type="movie", year_min=2016, text="superhero")),
    (
        "tearjerker romance from the 2000s",
        dict(genres=["Romance"], moods=["sad"], year_min=2000, year_max=2009),
    ),
    ("heartwarming christmas movies", dict(moods=["feel-good"], media_type="movie", text="christmas")),
    (
        "exciting heist films rated 8 or higher",
        dict(genres=["Crime"], moods=["exciting"], rating_min=8.0, media_type="movie"),
    ),
    ("comedies without romance", dict(genres=["Comedy"], exclude_genres=["Romance"])),
    ("horror comedy from the early 2000s", dict(genres=["Horror", "Comedy"], year_min=2000, year_max=2003)),
    (
        "slow burn horror around 2 hours",
        dict(genres=["Horror"], runtime_min=105, runtime_max=135, text="slow burn"),
    ),
    ("chill sitcoms", dict(genres=["Comedy"], moods=["relaxing"], media_type="tv")),
    (
        "noir detective films from the 1940s",
        dict(genres=["Mystery"], moods=["dark"], year_min=1940, year_max=1949, media_type="movie"),
    ),
    ("gangster movies set in the 1920s", dict(genres=["Crime"], media_type="movie", text="set in the 1920s")),
    (
        'films like "The Dark Knight"',
        dict(media_type="movie", text="The Dark Knight", similar_to="The Dark Knight"),
    ),
    ("war films, no romance", dict(genres=["War"], exclude_genres=["Romance"], media_type="movie")),
    (
        "best animated movies of 2019",
        dict(genres=["Animation"], year_min=2019, year_max=2019, rating_min=7.5, media_type="movie"),
    ),
    ("sci fi movies older than 1980", dict(genres=[SF], year_max=1979, media_type="movie")),
    ("something short and funny for tonight", dict(genres=["Comedy"], runtime_max=90)),
    (
        "action movies from 2010 to 2015",
        dict(genres=["Action"], year_min=2010, year_max=2015, media_type="movie"),
    ),
    ("mafia dramas over 2.5 hours", dict(genres=["Crime", "Drama"], runtime_min=150)),
    ("period dramas with strong female leads", dict(genres=["History", "Drama"], text="strong female leads")),
    ("bleak dystopian sci-fi", dict(genres=[SF], moods=["dark"], text="dystopian")),
    (
        "recent tv shows about space",
        dict(media_type="tv", year_min=RECENT, text="space", genres=["Science Fiction"]),
    ),
    ("the best whodunits of all time", dict(genres=["Mystery"], rating_min=7.5)),
    ("hilarious comedies from last year", dict(genres=["Comedy"], year_min=2024, year_max=2024)),
    ("8/10 or better fantasy", dict(genres=["Fantasy"], rating_min=8.0)),
    ("thrillers with at least 6.5 stars", dict(genres=["Thriller"], rating_min=6.5)),
    ("7+ rating sci-fi series", dict(genres=[SF], rating_min=7.0, media_type="tv")),
    (
        "relaxing nature documentaries under 90 min",
        dict(genres=["Documentary"], moods=["relaxing"], runtime_max=90, text="nature"),
    ),
    ("scifi tv series from this year", dict(genres=[SF], year_min=2025, year_max=2025, media_type="tv")),
    ("80's action flicks", dict(genres=["Action"], year_min=1980, year_max=1989, media_type="movie")),
    ("'80s slasher movies", dict(genres=["Horror"], year_min=1980, year_max=1989, media_type="movie")),
    (
        "romantic movies from the nineties",
        dict(genres=["Romance"], year_min=1990, year_max=1999, media_type="movie"),
    ),
    ("Star Wars", dict(text="Star Wars")),
    ("new york gangster movies", dict(genres=["Crime"], media_type="movie", text="new york")),
    ("old movies about an old man", dict(year_max=1979, media_type="movie", text="old man")),
    ("movies since 2015 with a rating over 8", dict(year_min=2015, rating_min=8.0, media_type="movie")),
    ("quick watch under 80 minutes", dict(runtime_max=80)),
    ("long movies, at least 2 hours", dict(runtime_min=120, media_type="movie")),
    ("classic 90s movies", dict(year_min=1990, year_max=1999, media_type="movie")),
    ("movies and tv shows about chess", dict(text="chess")),
    ("kid-friendly anime", dict(genres=["Family", "Animation"])),
    ("not a comedy, something sad", dict(exclude_genres=["Comedy"], moods=["sad"])),
    ("true crime docuseries", dict(genres=["Crime", "Documentary"], media_type="tv")),
    ("world war ii movies", dict(genres=["War"], media_type="movie", text="world war ii")),
    ("comedy but no rom-com", dict(genres=["Comedy"], exclude_genres=["Romance"])),
    ("2015-2010 crime", dict(genres=["Crime"], year_min=2010, year_max=2015)),
    ("a show about chefs", dict(media_type="tv", text="chefs")),
    ("good horror movies", dict(genres=["Horror"], media_type="movie")),
    (
        "what are some good movies like Inception?",
        dict(media_type="movie", text="Inception", similar_to="Inception"),
    ),
    ("FEEL GOOD MOVIES", dict(moods=["feel-good"], media_type="movie")),
    ("Ｓｃｉ－Ｆｉ ｍｏｖｉｅｓ", dict(genres=[SF], media_type="movie")),
]


def expected(query: str, fields: dict[str, Any]) -> ParsedQuery:
    return ParsedQuery(raw=query, **fields)


@pytest.mark.parametrize(("query", "fields"), QUERIES, ids=[q for q, _ in QUERIES])
def test_real_looking_queries(query: str, fields: dict[str, Any]) -> None:
    assert parse_query(query, today=TODAY) == expected(query, fields)


def test_the_table_is_big_enough() -> None:
    assert len({q for q, _ in QUERIES}) >= 60


# ---- vocabulary ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "genres"),
    [
        ("sci-fi", [SF]),
        ("scifi", [SF]),
        ("sci fi", [SF]),
        ("science fiction", [SF]),
        ("space opera", [SF]),
        ("rom-com", ["Romance", "Comedy"]),
        ("romcom", ["Romance", "Comedy"]),
        ("romantic comedy", ["Romance", "Comedy"]),
        ("animated", ["Animation"]),
        ("cartoon", ["Animation"]),
        ("anime", ["Animation"]),
        ("horror", ["Horror"]),
        ("scary", ["Horror"]),
        ("slasher", ["Horror"]),
        ("thriller", ["Thriller"]),
        ("documentary", ["Documentary"]),
        ("docu", ["Documentary"]),
        ("doc", ["Documentary"]),
        ("war", ["War"]),
        ("westerns", ["Western"]),
        ("family", ["Family"]),
        ("kids", ["Family"]),
        ("children", ["Family"]),
        ("musicals", ["Music"]),
        ("music", ["Music"]),
        ("heist", ["Crime"]),
        ("gangsters", ["Crime"]),
        ("mafia", ["Crime"]),
        ("whodunit", ["Mystery"]),
        ("detective", ["Mystery"]),
        ("historical", ["History"]),
        ("period", ["History"]),
        ("history", ["History"]),
        ("fantasy", ["Fantasy"]),
        ("adventures", ["Adventure"]),
        ("action", ["Action"]),
        ("comedies", ["Comedy"]),
        ("funny", ["Comedy"]),
        ("dramas", ["Drama"]),
        ("romantic", ["Romance"]),
        ("love story", ["Romance"]),
        ("tv movie", ["TV Movie"]),
    ],
)
def test_genre_words(word: str, genres: list[str]) -> None:
    parsed = parse_query(f"{word.upper()} to watch", today=TODAY)
    assert (parsed.genres, parsed.text) == (genres, "")


@pytest.mark.parametrize(
    ("phrase", "mood"),
    [
        *[(w, "exciting") for w in ("exciting", "thrilling", "action-packed", "adrenaline")],
        *[(w, "relaxing") for w in ("relaxing", "chill", "cozy", "laid-back")],
        *[(w, "happy") for w in ("happy", "cheerful", "uplifting")],
        *[(w, "sad") for w in ("sad", "tearjerker", "melancholic", "depressing")],
        *[(w, "intense") for w in ("intense", "gripping")],
        *[(w, "calm") for w in ("calm", "peaceful", "quiet")],
        *[(w, "suspenseful") for w in ("suspenseful", "tense", "edge of my seat")],
        *[(w, "dark") for w in ("dark", "gritty", "bleak", "noir")],
        *[(w, "feel-good") for w in ("feel-good", "feel good", "heartwarming", "wholesome")],
    ],
)
def test_mood_words(phrase: str, mood: str) -> None:
    parsed = parse_query(f"something {phrase}", today=TODAY)
    assert (parsed.moods, parsed.genres, parsed.text) == ([mood], [], "")


def test_every_canonical_genre_is_reachable_and_the_tables_use_only_the_vocabulary() -> None:
    table_genres = {g for gs in lexicon.GENRE_WORDS.values() for g in gs}
    assert table_genres == set(GENRES)
    assert set(lexicon.MOOD_WORDS.values()) == set(MOODS)


def test_tmdb_genre_names_from_the_real_catalog_parse_to_themselves() -> None:
    with (DATA / "tmdb-5000" / "tmdb_5000_movies.csv").open(encoding="utf-8") as f:
        names = {g["name"] for row in csv.DictReader(f) for g in json.loads(row["genres"] or "[]")}
    canonical = {name for name in names if canonical_genres([name]) == [name]}
    assert len(canonical) >= 18
    for name in canonical:
        assert parse_query(f"{name} movies", today=TODAY).genres == [name], name


# ---- years, runtime, rating -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "year_min", "year_max"),
    [
        ("90s", 1990, 1999),
        ("1990s", 1990, 1999),
        ("the nineties", 1990, 1999),
        ("80's", 1980, 1989),
        ("'80s", 1980, 1989),
        ("2000s", 2000, 2009),
        ("late 80s", 1986, 1989),
        ("from 1995", 1995, 1995),
        ("in 2010", 2010, 2010),
        ("2010-2015", 2010, 2015),
        ("2010 to 2015", 2010, 2015),
        ("1990-95", 1990, 1995),
        ("between 2000 and 2005", 2000, 2005),
        ("between 2005 and 2000", 2000, 2005),
        ("the 80s and 90s", 1980, 1999),
        ("before 2000", None, 1999),
        ("pre-2000", None, 1999),
        ("after 2010", 2011, None),
        ("since 2015", 2015, None),
        ("2010 onwards", 2010, None),
        ("older than 1980", None, 1979),
        ("before the 90s", None, 1989),
        ("around 1995", 1993, 1997),
        ("recent", RECENT, None),
        ("new", RECENT, None),
        ("latest", RECENT, None),
        ("this year", 2025, 2025),
        ("last year", 2024, 2024),
        ("last 5 years", 2020, None),
        ("classic", None, 1979),
        ("old", None, 1979),
        ("modern", 2000, None),
        ("recent 90s", 1990, 1999),  # an explicit year beats a vague word
        ("before 1990 after 2000", 2001, None),  # contradiction: the last one mentioned wins
    ],
)
def test_year_phrases(phrase: str, year_min: int | None, year_max: int | None) -> None:
    parsed = parse_query(f"thrillers {phrase}", today=TODAY)
    assert (parsed.year_min, parsed.year_max, parsed.genres, parsed.text) == (
        year_min,
        year_max,
        ["Thriller"],
        "",
    )


def test_relative_years_follow_today() -> None:
    assert parse_query("recent comedies", today=date(2031, 1, 1)).year_min == 2028
    assert parse_query("recent comedies").year_min == date.today().year - 3


@pytest.mark.parametrize(
    ("phrase", "runtime_min", "runtime_max"),
    [
        ("under 2 hours", None, 120),
        ("less than 90 minutes", None, 90),
        ("under 90 min", None, 90),
        ("no more than 100 minutes", None, 100),
        ("over 2.5 hours", 150, None),
        ("at least 2 hours", 120, None),
        ("longer than an hour and a half", 90, None),
        ("around 2 hours", 105, 135),
        ("about 90 minutes", 75, 105),
        ("2 hours or less", None, 120),
        ("short", None, 90),
        ("quick watch", None, 90),
        ("long", 150, None),
        ("epic", 150, None),
        ("short, under 75 minutes", None, 75),  # explicit beats vague
    ],
)
def test_runtime_phrases(phrase: str, runtime_min: int | None, runtime_max: int | None) -> None:
    parsed = parse_query(f"{phrase} westerns", today=TODAY)
    assert (parsed.runtime_min, parsed.runtime_max, parsed.genres, parsed.text) == (
        runtime_min,
        runtime_max,
        ["Western"],
        "",
    )


@pytest.mark.parametrize(
    ("phrase", "rating"),
    [
        ("highly rated", 7.5),
        ("top rated", 7.5),
        ("acclaimed", 7.5),
        ("critically acclaimed", 7.5),
        ("best", 7.5),
        ("rated above 7", 7.0),
        ("rating over 8", 8.0),
        ("at least 6.5 stars", 6.5),
        ("7+ rating", 7.0),
        ("8/10 or better", 8.0),
        ("4 stars out of 5", 8.0),
        ("top rated above 8.5", 8.5),
        ("good", None),
        ("rated above 11", None),
    ],
)
def test_rating_phrases(phrase: str, rating: float | None) -> None:
    assert parse_query(f"{phrase} dramas", today=TODAY).rating_min == rating


@pytest.mark.parametrize(
    ("phrase", "media_type"),
    [
        ("tv show", "tv"),
        ("tv shows", "tv"),
        ("series", "tv"),
        ("tv series", "tv"),
        ("sitcom", "tv"),
        ("movie", "movie"),
        ("movies", "movie"),
        ("film", "movie"),
        ("films", "movie"),
        ("movies or tv shows", None),
    ],
)
def test_media_type_words_are_read_and_removed(phrase: str, media_type: str | None) -> None:
    parsed = parse_query(f"a {phrase} about dogs", today=TODAY)
    assert (parsed.media_type, parsed.text) == (media_type, "dogs")


# ---- text, titles, robustness -----------------------------------------------------------------------


def test_quoted_titles_from_the_real_catalog_stay_verbatim_and_set_no_filter() -> None:
    with (DATA / "movielens-latest-small" / "movies.csv").open(encoding="utf-8") as f:
        titles = [row["title"].rsplit(" (", 1)[0].strip() for row in csv.DictReader(f)]
    sample = [t for t in titles[::25] if t and '"' not in t]
    assert len(sample) > 300
    for title in sample:
        parsed = parse_query(f'movies like "{title}"', today=TODAY)
        assert parsed == ParsedQuery(
            raw=f'movies like "{title}"',
            text=" ".join(unicodedata.normalize("NFKC", title).split()),
            media_type="movie",
            similar_to=" ".join(unicodedata.normalize("NFKC", title).split()),
        )


def test_a_description_after_like_is_parsed_not_kept_as_a_title() -> None:
    parsed = parse_query("something like a cozy mystery", today=TODAY)
    assert (parsed.genres, parsed.moods, parsed.text) == (["Mystery"], ["relaxing"], "")


@pytest.mark.parametrize("query", ["", "   ", "please", "!!!", "show me something"])
def test_queries_without_content_are_empty(query: str) -> None:
    parsed = parse_query(query, today=TODAY)
    assert parsed.is_empty() and parsed == ParsedQuery(raw=query)


def test_is_empty_is_false_as_soon_as_anything_is_asked() -> None:
    assert not parse_query("dogs", today=TODAY).is_empty()
    assert not parse_query("after 2010", today=TODAY).is_empty()
    assert not parse_query("no horror", today=TODAY).is_empty()


def test_to_dict_is_json_ready_and_complete() -> None:
    parsed = parse_query("dark 90s thrillers under 2 hours rated above 7 like Se7en", today=TODAY)
    data = json.loads(json.dumps(parsed.to_dict()))
    assert ParsedQuery(**data) == parsed
    assert data["text"] == "Se7en"


def test_queries_over_the_limit_are_rejected() -> None:
    parse_query("x" * MAX_QUERY_CHARS, today=TODAY)
    with pytest.raises(InvalidQuery):
        parse_query("x" * (MAX_QUERY_CHARS + 1), today=TODAY)
    with pytest.raises(InvalidQuery):
        parse_query("horror " * 1500, today=TODAY)


def test_a_non_string_query_is_rejected() -> None:
    with pytest.raises(InvalidQuery):
        parse_query(42, today=TODAY)  # type: ignore[arg-type]


# ---- properties -------------------------------------------------------------------------------------

VOCABULARY = sorted(
    {w for q, _ in QUERIES for w in q.split()}
    | {"no", "not", "without", "like", "under", "over", "before", "after", "between", "and", "or", "-", "+"}
    | {"2015", "1999", "90s", "7", "8/10", "hours", "minutes", "rated", "above", '"', "'", ",", "🎬", "ß"}
)
vocabulary_queries = st.lists(st.sampled_from(VOCABULARY), max_size=40).map(" ".join)


def check_invariants(query: str) -> ParsedQuery:
    parsed = parse_query(query, today=TODAY)
    assert parsed == parse_query(query, today=TODAY)
    assert set(parsed.genres) <= set(GENRES) and set(parsed.exclude_genres) <= set(GENRES)
    assert not set(parsed.genres) & set(parsed.exclude_genres)
    assert set(parsed.moods) <= set(MOODS)
    assert len(set(parsed.genres)) == len(parsed.genres) and len(set(parsed.moods)) == len(parsed.moods)
    if parsed.year_min is not None and parsed.year_max is not None:
        assert parsed.year_min <= parsed.year_max
    if parsed.runtime_min is not None and parsed.runtime_max is not None:
        assert parsed.runtime_min <= parsed.runtime_max
    assert all(r is None or r > 0 for r in (parsed.runtime_min, parsed.runtime_max))
    assert parsed.rating_min is None or 0 <= parsed.rating_min <= 10
    assert parsed.media_type in (None, "movie", "tv")
    assert len(parsed.text) <= len(unicodedata.normalize("NFKC", query))
    return parsed


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=MAX_QUERY_CHARS))
def test_arbitrary_text_never_raises_and_keeps_the_invariants(query: str) -> None:
    check_invariants(query)


@settings(max_examples=300, deadline=None)
@given(vocabulary_queries.filter(lambda q: len(q) <= MAX_QUERY_CHARS))
def test_vocabulary_soup_never_raises_and_keeps_the_invariants(query: str) -> None:
    check_invariants(query)


@settings(max_examples=100, deadline=None)
@given(vocabulary_queries.filter(lambda q: len(q) <= MAX_QUERY_CHARS))
def test_case_does_not_change_the_filters(query: str) -> None:
    lower, upper = parse_query(query.lower(), today=TODAY), parse_query(query.upper(), today=TODAY)
    words = {"raw": "", "text": "", "similar_to": "", "people": [], "notes": []}
    assert {**lower.to_dict(), **words} == {**upper.to_dict(), **words}
    assert lower.text.casefold() == upper.text.casefold()
    assert (lower.similar_to or "").casefold() == (upper.similar_to or "").casefold()
    assert [p.casefold() for p in lower.people] == [p.casefold() for p in upper.people]


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=MAX_QUERY_CHARS + 1, max_size=MAX_QUERY_CHARS + 200))
def test_longer_text_always_raises_invalid_query(query: str) -> None:
    with pytest.raises(InvalidQuery):
        parse_query(query, today=TODAY)


@settings(deadline=None)
@given(st.integers(1880, 2099))
def test_any_year_round_trips(year: int) -> None:
    assert (
        parse_query(f"films from {year}", today=TODAY).year_min,
        parse_query(f"in {year}", today=TODAY).year_max,
    ) == (
        year,
        year,
    )
    assert parse_query(f"before {year}", today=TODAY).year_max == year - 1
    assert parse_query(f"after {year}", today=TODAY).year_min == year + 1


@settings(deadline=None)
@given(st.integers(1, 600), st.sampled_from(["under", "less than", "at most"]))
def test_any_runtime_limit_round_trips(minutes: int, word: str) -> None:
    assert parse_query(f"{word} {minutes} minutes", today=TODAY).runtime_max == minutes


@settings(deadline=None)
@given(st.integers(0, 100).map(lambda tenths: tenths / 10))
def test_any_rating_round_trips(rating: float) -> None:
    assert parse_query(f"rated above {rating}", today=TODAY).rating_min == rating


@settings(deadline=None)
@given(
    st.sampled_from([q for q, _ in QUERIES]), st.sampled_from(["please", "show me", "i want", "recommend"])
)
def test_request_words_do_not_change_the_parse(query: str, filler: str) -> None:
    plain = parse_query(query, today=TODAY).to_dict() | {"raw": ""}
    assert parse_query(f"{filler} {query}", today=TODAY).to_dict() | {"raw": ""} == plain


_PHRASES = sorted({q["q"] for q in json.loads((DATA / "golden_queries.json").read_text())["queries"]})


def _scan_every_rule(text: str, today: date) -> list[tuple[Any, int]]:
    """The scan without the literal-prefix gate: every rule's pattern run over the text."""
    from metamedia.search.grammar import _normalize  # deferred: private helpers, this test only
    from metamedia.search.parser import _ALL_RULES  # deferred: private helpers, this test only

    text = _normalize(text)
    found = []
    for index, rule in enumerate(_ALL_RULES):
        for m in rule.pattern.finditer(text):
            hit = rule.interpret(m, today) if m.end() > m.start() else None
            if hit is not None:
                found.append((hit, index))
    return found


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_PHRASES), min_size=1, max_size=3),
    st.text(alphabet=st.characters(codec="ascii"), max_size=30),
)
def test_rule_gate_skips_only_rules_that_cannot_match(phrases: list[str], noise: str) -> None:
    """The parser skips a rule whose literal start is absent from an ASCII query; that must never
    drop a match (mixed case, punctuation and noise included)."""
    from metamedia.search.grammar import _candidates, _normalize  # deferred: private helpers, this test only
    from metamedia.search.parser import _ALL_RULES  # deferred: private helpers, this test only

    today = date(2026, 6, 15)
    for query in (" ".join(phrases) + noise, (noise + " ".join(phrases)).upper(), " ".join(phrases).title()):
        assert _candidates(_normalize(query), today, _ALL_RULES) == _scan_every_rule(query, today)


def test_to_dict_is_asdict_field_for_field_with_its_own_lists() -> None:
    for phrase in _PHRASES:
        parsed = parse_query(phrase, today=date(2026, 6, 15))
        out = parsed.to_dict()
        assert out == asdict(parsed) and list(out) == list(asdict(parsed)), phrase
        out["genres"].append("changed")  # the copy is the caller's own
        assert "changed" not in parsed.genres
