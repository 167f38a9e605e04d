"""Which catalog format a file holds, told by its header (or first line), never by its name alone."""

from __future__ import annotations

from pathlib import Path

from ..errors import IngestError
from .common import UNREADABLE_ERRORS, CsvFormat, open_text, read_header
from .movielens import MOVIELENS_LINKS, MOVIELENS_MOVIES, RATINGS_COLUMNS
from .tmdb import MOVIES_METADATA, TMDB5000, TMDB_KEYWORDS

FORMATS = (
    "tmdb5000",
    "movies_metadata",
    "tmdb_keywords",
    "movielens_movies",
    "movielens_links",
    "movielens_ratings",
    "jsonl",
)
# Catalog CSV formats by name, in the order detection tries them: a wider header first, since
# e.g. every TMDB 5000 header also holds the (id, keywords) columns of the keywords file.
CSV_FORMATS: dict[str, CsvFormat] = {
    fmt.name: fmt for fmt in (MOVIES_METADATA, TMDB5000, TMDB_KEYWORDS, MOVIELENS_LINKS, MOVIELENS_MOVIES)
}


def detect_format(path: Path) -> str:
    """The name (one of FORMATS) of the format `path` holds, plain or gzip-compressed.

    Raises IngestError when the file is missing, unreadable, empty or in no known format.
    """
    path = Path(path)
    first_line = _first_non_blank_line(path)
    if first_line is None:
        raise IngestError(f"{path} is empty: nothing to detect a format from")
    if first_line.lstrip().startswith("{"):
        return "jsonl"
    header = read_header(path)
    if set(RATINGS_COLUMNS) <= set(header):
        return "movielens_ratings"
    for fmt in CSV_FORMATS.values():
        if fmt.matches(header):
            return fmt.name
    shown_header = ",".join(header)[:200]
    raise IngestError(
        f"cannot tell the format of {path}: its first line ({shown_header!r}) is not the header of a "
        f"known catalog file nor a JSON object; known formats: {', '.join(FORMATS)}"
    )


def _first_non_blank_line(path: Path) -> str | None:
    with open_text(path) as stream:
        try:
            for line in stream:
                if line.strip():
                    return line
        except UNREADABLE_ERRORS as exc:
            raise IngestError(f"cannot read {path}: {exc}") from exc
    return None
