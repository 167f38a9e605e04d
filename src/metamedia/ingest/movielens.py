"""MovieLens files: movies.csv (titles, genres), links.csv (id cross-reference); ratings.csv is not a catalog."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..models import MediaRecord
from ..vocab import canonical_genres
from .common import CsvFormat, RowError, check_year, imdb_id, parse_id

RATINGS_COLUMNS = ("userId", "movieId", "rating")
RATINGS_MESSAGE = "ratings are interactions, not catalog items: use `metamedia import-ratings`"

# "(1995)", or "(2006–2007)" for a series: the first year is the release year.
_TRAILING_YEAR = re.compile(r"\((\d{4})(?:\s*[–-]\s*(?:\d{4})?)?\)$")
# MovieLens moves a leading article behind a comma: "Jackal, The", "Postino, Il", "Homme, L'".
_TRAILING_ARTICLE = re.compile(
    r"^(?P<rest>.+), (?P<article>The|A|An|Les|La|Le|L'|Il|Lo|Gli|I|El|Los|Las|Die|Der|Das|Den|Det|De|Het|Un|Une|Una|Uno|O|Os|As|Da)$"
)


def split_movielens_title(raw: str) -> tuple[str, int | None]:
    """("Toy Story", 1995) from "Toy Story (1995)".

    Drops the trailing year, then any trailing parenthesised alternate titles ("(a.k.a. Se7en)",
    "(Fabuleux destin d'Amélie Poulain, Le)"), then puts a trailing article back in front.
    """
    title = " ".join(raw.split())
    year = None
    match = _TRAILING_YEAR.search(title)
    if match is not None:
        year = int(match.group(1))
        title = title[: match.start()].rstrip()
    while title.endswith(")"):
        opening = _matching_open_paren(title)
        if opening is None or not title[:opening].strip():
            break
        title = title[:opening].rstrip()
    article = _TRAILING_ARTICLE.match(title)
    if article is not None:
        joiner = "" if article["article"].endswith("'") else " "
        title = article["article"] + joiner + article["rest"]
    return title, year


def _matching_open_paren(title: str) -> int | None:
    """Index of the "(" that opens the group closed by the final ")"; None when unbalanced."""
    depth = 0
    for index in range(len(title) - 1, -1, -1):
        if title[index] == ")":
            depth += 1
        elif title[index] == "(":
            depth -= 1
            if depth == 0:
                return index
    return None


def parse_movies_row(fields: Mapping[str, str]) -> MediaRecord:
    movielens_id = parse_id(fields["movieId"], "movielens id")
    if movielens_id is None:
        raise RowError("missing movielens id")
    title, year = split_movielens_title(fields["title"])
    if not title:
        raise RowError("empty title")
    return MediaRecord(
        source="movielens_movies",
        title=title,
        genres=canonical_genres(fields["genres"].split("|")),
        year=check_year(year),
        movielens_id=movielens_id,
    )


def parse_links_row(fields: Mapping[str, str]) -> MediaRecord:
    movielens_id = parse_id(fields["movieId"], "movielens id")
    if movielens_id is None:
        raise RowError("missing movielens id")
    return MediaRecord(
        source="movielens_links",
        title=None,
        imdb_id=imdb_id(fields["imdbId"]),
        tmdb_id=parse_id(fields["tmdbId"], "tmdb id"),
        movielens_id=movielens_id,
    )


MOVIELENS_MOVIES = CsvFormat(
    name="movielens_movies",
    required_columns=("movieId", "title", "genres"),
    key_columns=("movieId", "title"),
    parse_row=parse_movies_row,
)
MOVIELENS_LINKS = CsvFormat(
    name="movielens_links",
    required_columns=("movieId", "imdbId", "tmdbId"),
    key_columns=("movieId",),
    parse_row=parse_links_row,
)
