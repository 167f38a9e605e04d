"""Catalog parsers against the real data files, small broken files, and generated input."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import sys
from datetime import date
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metamedia.errors import IngestError
from metamedia.ingest import FORMATS, detect_format, read_records
from metamedia.ingest.movielens import split_movielens_title
from metamedia.models import MEDIA_TYPES, MediaRecord, Reject
from metamedia.vocab import GENRES
from tests.conftest import DATA

BROKEN = Path(__file__).resolve().parent / "data"

REAL_FILES = {
    "tmdb-5000/tmdb_5000_movies.csv": "tmdb5000",
    "the-movies-dataset/movies_metadata_part1.csv": "movies_metadata",
    "the-movies-dataset/movies_metadata_part2.csv": "movies_metadata",
    "the-movies-dataset/keywords.csv": "tmdb_keywords",
    "the-movies-dataset/links.csv": "movielens_links",
    "movielens-latest-small/movies.csv": "movielens_movies",
    "movielens-latest-small/links.csv": "movielens_links",
    "movielens-latest-small/ratings.csv": "movielens_ratings",
}
CATALOG_FILES = {name: fmt for name, fmt in REAL_FILES.items() if fmt != "movielens_ratings"}

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@cache
def parsed(relative: str) -> list[MediaRecord | Reject]:
    return list(read_records(DATA / relative))


@cache
def by_key(relative: str, key: str) -> dict[int, MediaRecord]:
    return {getattr(r, key): r for r in parsed(relative) if isinstance(r, MediaRecord)}


def csv_data_rows(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as stream:
        return sum(1 for _ in csv.reader(stream)) - 1


def rejects(items: list[MediaRecord | Reject]) -> dict[int, str]:
    return {r.row: r.reason for r in items if isinstance(r, Reject)}


# --- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(("relative", "fmt"), REAL_FILES.items())
def test_detects_every_real_file_also_renamed_and_gzipped(relative: str, fmt: str, tmp_path: Path) -> None:
    source = DATA / relative
    renamed = tmp_path / "export.dat"
    shutil.copyfile(source, renamed)
    zipped = tmp_path / "catalog.bin"
    with source.open("rb") as plain, gzip.open(zipped, "wb") as packed:
        shutil.copyfileobj(plain, packed)

    assert detect_format(source) == fmt
    assert detect_format(renamed) == fmt
    assert detect_format(zipped) == fmt


def test_detects_jsonl_by_content(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.txt"
    shutil.copyfile(BROKEN / "catalog_broken.jsonl", catalog)
    assert detect_format(catalog) == "jsonl"


def test_gzip_copy_reads_the_same_records(tmp_path: Path) -> None:
    source = DATA / "movielens-latest-small/links.csv"
    zipped = tmp_path / "links.csv.gz"
    zipped.write_bytes(gzip.compress(source.read_bytes()))
    assert list(read_records(zipped)) == parsed("movielens-latest-small/links.csv")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"userId,itemId,score\n1,2,3\n", "cannot tell the format"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "cannot tell the format"),
        (gzip.compress(b"")[:12], "cannot read"),
    ],
    ids=["empty", "blank", "unknown-header", "binary", "truncated-gzip"],
)
def test_unknown_or_unreadable_file_raises_ingest_error(content: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(content)
    with pytest.raises(IngestError, match=message):
        detect_format(path)
    with pytest.raises(IngestError):
        read_records(path)


def test_missing_file_or_folder_raises_ingest_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        detect_format(tmp_path / "nope.csv")
    with pytest.raises(IngestError, match="no such file"):
        read_records(tmp_path / "nope.jsonl", "jsonl")
    with pytest.raises(IngestError, match="not a regular file"):
        read_records(tmp_path)


def test_ratings_are_refused_with_a_pointer_to_import_ratings() -> None:
    ratings = DATA / "movielens-latest-small/ratings.csv"
    with pytest.raises(IngestError, match="import-ratings"):
        read_records(ratings)
    with pytest.raises(IngestError, match="interactions, not catalog items"):
        read_records(ratings, "movielens_ratings")


def test_explicit_format_must_fit_the_file() -> None:
    with pytest.raises(IngestError, match="missing column"):
        read_records(DATA / "movielens-latest-small/links.csv", "movielens_movies")
    with pytest.raises(IngestError, match="unknown format"):
        read_records(DATA / "movielens-latest-small/links.csv", "imdb")
    assert set(FORMATS) == set(REAL_FILES.values()) | {"jsonl"}


# --- the real files --------------------------------------------------------------------------


@pytest.mark.parametrize(("relative", "fmt"), CATALOG_FILES.items())
def test_real_file_rows_all_become_records_or_rejects(relative: str, fmt: str) -> None:
    items = parsed(relative)
    records = [r for r in items if isinstance(r, MediaRecord)]
    assert len(items) == csv_data_rows(DATA / relative)
    assert len(records) > 0.99 * len(items)
    assert {r.source for r in records} == {fmt}
    for record in records:
        assert record.runtime != 0
        assert record.vote_average is None or 0 <= record.vote_average <= 10
        for value in (record.title, record.overview, record.original_title, record.tagline):
            assert value is None or (value == value.strip() and value and "\r" not in value)
        assert record.keywords == sorted(set(record.keywords), key=record.keywords.index)
        assert all(k == k.lower() for k in record.keywords)
        assert set(record.genres) <= set(GENRES)
        assert (
            record.year is None or record.release_date is None or str(record.year) == record.release_date[:4]
        )


def test_tmdb5000_avatar() -> None:
    avatar = by_key("tmdb-5000/tmdb_5000_movies.csv", "tmdb_id")[19995]
    assert avatar.title == "Avatar"
    assert avatar.year == 2009 and avatar.release_date == "2009-12-10"
    assert avatar.genres == ["Action", "Adventure", "Fantasy", "Science Fiction"]
    assert "alien" in avatar.keywords and "space war" in avatar.keywords
    assert avatar.language == "en" and avatar.runtime == 162
    assert avatar.tagline == "Enter the World of Pandora."
    assert avatar.imdb_id is None and avatar.poster_path is None


def test_tmdb5000_unknowns_become_none() -> None:
    movies = by_key("tmdb-5000/tmdb_5000_movies.csv", "tmdb_id")
    with (DATA / "tmdb-5000/tmdb_5000_movies.csv").open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    zero_runtime = [int(row["id"]) for row in rows if row["runtime"] in ("0", "0.0")]
    no_votes = [int(row["id"]) for row in rows if row["vote_count"] == "0"]
    no_date = [int(row["id"]) for row in rows if not row["release_date"]]
    with_cr = [int(row["id"]) for row in rows if "\r" in row["overview"]]
    assert zero_runtime and no_votes and no_date and with_cr
    assert all(movies[i].runtime is None for i in zero_runtime)
    assert all(movies[i].vote_average is None and movies[i].vote_count == 0 for i in no_votes)
    assert all(movies[i].year is None and movies[i].release_date is None for i in no_date)
    assert all("\n" in (movies[i].overview or "") for i in with_cr)


def test_movies_metadata_toy_story_and_float_columns() -> None:
    toy_story = by_key("the-movies-dataset/movies_metadata_part1.csv", "tmdb_id")[862]
    assert toy_story.title == "Toy Story" and toy_story.year == 1995
    assert toy_story.imdb_id == "tt0114709"
    assert toy_story.genres == ["Animation", "Comedy", "Family"]
    assert toy_story.runtime == 81  # written "81.0" in the file
    assert toy_story.poster_path == "/rhIRbceoE9lR4veEXuwCC2wARtG.jpg"
    assert toy_story.keywords == [] and toy_story.vote_count == 5415
    heat = by_key("the-movies-dataset/movies_metadata_part2.csv", "tmdb_id")[949]
    assert (heat.title, heat.runtime, heat.tagline) == ("Heat", 170, "A Los Angeles Crime Saga")


def test_tmdb_keywords_rows_carry_only_ids_and_keywords() -> None:
    items = parsed("the-movies-dataset/keywords.csv")
    toy_story = next(r for r in items if isinstance(r, MediaRecord) and r.tmdb_id == 862)
    assert toy_story.title is None
    assert toy_story.keywords[:2] == ["jealousy", "toy"] and "toy comes to life" in toy_story.keywords
    assert any(isinstance(r, MediaRecord) and r.keywords == [] for r in items)


def test_movielens_movies_titles_years_and_genres() -> None:
    movies = by_key("movielens-latest-small/movies.csv", "movielens_id")
    toy_story = movies[1]
    assert (toy_story.title, toy_story.year) == ("Toy Story", 1995)
    assert toy_story.genres == ["Adventure", "Animation", "Family", "Comedy", "Fantasy"]
    titles = {r.title: r for r in movies.values()}
    assert titles["Seven"].year == 1995
    assert titles["Amelie"].year == 2001
    assert titles["The Jackal"].year == 1997
    assert "Jackal, The" not in titles
    no_genres = [r for r in movies.values() if not r.genres]
    assert no_genres  # "(no genres listed)" is not a genre


@pytest.mark.parametrize(
    ("raw", "title", "year"),
    [
        ("Toy Story (1995)", "Toy Story", 1995),
        ("Seven (a.k.a. Se7en) (1995)", "Seven", 1995),
        ("Amelie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Amelie", 2001),
        (
            "From Dusk Till Dawn 2: Texas Blood Money (1999) ",
            "From Dusk Till Dawn 2: Texas Blood Money",
            1999,
        ),
        ("Babylon 5", "Babylon 5", None),
        ("Lord of the Rings: The Two Towers, The (2002)", "The Lord of the Rings: The Two Towers", 2002),
        ("Atalante, L' (1934)", "L'Atalante", 1934),
        ("Boot, Das (Boat, The) (1981)", "Das Boot", 1981),
        ("Death Note: Desu nôto (2006–2007)", "Death Note: Desu nôto", 2006),
        ("(500) Days of Summer (2009)", "(500) Days of Summer", 2009),
        ("Monsters, Inc. (2001)", "Monsters, Inc.", 2001),
        (
            "His Secret Life (a.k.a. Ignorant Fairies, The) (Fate ignoranti, Le) (2001)",
            "His Secret Life",
            2001,
        ),
    ],
)
def test_split_movielens_title(raw: str, title: str, year: int | None) -> None:
    assert split_movielens_title(raw) == (title, year)


@pytest.mark.parametrize("relative", ["movielens-latest-small/links.csv", "the-movies-dataset/links.csv"])
def test_links_cross_reference_ids(relative: str) -> None:
    links = by_key(relative, "movielens_id")
    toy_story = links[1]
    assert (toy_story.imdb_id, toy_story.tmdb_id, toy_story.title) == ("tt0114709", 862, None)
    assert any(r.tmdb_id is None for r in links.values())


# --- broken rows -----------------------------------------------------------------------------


def test_broken_movielens_movies_rows_are_rejected_and_good_rows_kept() -> None:
    items = list(read_records(BROKEN / "movielens_movies_broken.csv"))
    assert [r.title for r in items if isinstance(r, MediaRecord)] == ["Toy Story", "Seven"]
    assert rejects(items) == {
        2: "empty title",
        3: "empty title",
        4: "expected 3 columns, got 4",
        5: "bad movielens id 'x5'",
    }
    assert next(r for r in items if isinstance(r, Reject) and r.row == 5).key == "x5"


def test_broken_links_rows_are_rejected_and_ids_normalised() -> None:
    items = list(read_records(BROKEN / "movielens_links_broken.csv"))
    good = [(r.movielens_id, r.imdb_id, r.tmdb_id) for r in items if isinstance(r, MediaRecord)]
    assert good == [(1, "tt0114709", 862), (2, "tt0113497", None), (3, "tt0113228", 15602), (4, None, 31357)]
    reasons = rejects(items)
    assert set(reasons) == {5, 6, 7, 8}
    assert reasons[5].startswith("bad movielens id")
    assert reasons[6] == "expected 3 columns, got 4"
    assert reasons[7].startswith("bad imdb id")
    assert reasons[8].startswith("bad tmdb id '-710'")


def test_broken_jsonl_lines_are_rejected_with_line_numbers() -> None:
    items = list(read_records(BROKEN / "catalog_broken.jsonl"))
    toy_story, breaking_bad = [r for r in items if isinstance(r, MediaRecord)]
    assert toy_story.genres == ["Animation", "Family", "Comedy"]
    assert toy_story.keywords == ["toy", "friendship"]
    assert (toy_story.year, toy_story.imdb_id, toy_story.source) == (1995, "tt0114709", "jsonl")
    assert (breaking_bad.media_type, breaking_bad.genres, breaking_bad.runtime) == (
        "tv",
        ["Drama", "Crime"],
        None,
    )
    reasons = rejects(items)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9]
    assert reasons[3].startswith("invalid JSON")
    assert reasons[4] == "empty title"
    assert reasons[5] == "bad release_date '1995-13-45'"
    assert reasons[6] == "negative runtime -5"
    assert reasons[7].startswith("media_type 'film'")
    assert reasons[8] == "runtime must be an integer, got string"
    assert reasons[9] == "expected a JSON object, got list"


def real_row(relative: str, tmdb_id: str) -> dict[str, str]:
    with (DATA / relative).open(encoding="utf-8", newline="") as stream:
        return next(row for row in csv.DictReader(stream) if row["id"] == tmdb_id)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"title": "  "}, "empty title"),
        ({"release_date": "1995-13-45"}, "bad release_date '1995-13-45'"),
        ({"release_date": "30/10/1995"}, "bad release_date '30/10/1995'"),
        ({"runtime": "-81.0"}, "negative runtime -81"),
        ({"vote_average": "11.5"}, "vote_average 11.5 outside 0..10"),
        ({"vote_count": "-3"}, "negative vote_count -3"),
        ({"popularity": "nan"}, "bad popularity 'nan'"),
        ({"id": "1995-10-30"}, "bad tmdb id '1995-10-30'"),
        ({"imdb_id": "nm0000158"}, "bad imdb id 'nm0000158'"),
    ],
)
def test_movies_metadata_bad_values_reject_only_their_row(
    change: dict[str, str], reason: str, tmp_path: Path
) -> None:
    relative = "the-movies-dataset/movies_metadata_part1.csv"
    good, bad = real_row(relative, "862"), real_row(relative, "8844") | change
    path = tmp_path / "metadata.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(good))
        writer.writeheader()
        writer.writerows([good, bad, good | {"genres": "[{'id': 16, 'name': 'Animation'"}])
    items = list(read_records(path))
    assert rejects(items) == {2: reason}
    first, third = items[0], items[2]
    assert isinstance(first, MediaRecord) and isinstance(third, MediaRecord)
    assert first.genres == ["Animation", "Comedy", "Family"]
    assert third.genres == [] and third.title == "Toy Story"  # a malformed genres literal only drops genres


def test_float_written_ids_are_read_as_integers(tmp_path: Path) -> None:
    row = real_row("tmdb-5000/tmdb_5000_movies.csv", "19995")
    path = tmp_path / "tmdb.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\r\n")
        writer.writeheader()
        writer.writerow(row | {"id": "19995.0", "vote_count": "11800.0", "title": " Avatar \r\n"})
    (record,) = read_records(path)
    assert isinstance(record, MediaRecord)
    assert (record.tmdb_id, record.vote_count, record.title) == (19995, 11800, "Avatar")


def test_invalid_utf8_rejects_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    path.write_bytes(b"movieId,title,genres\n1,Caf\xe9 (2001),Drama\n2,Heat (1995),Action\n")
    items = list(read_records(path))
    assert rejects(items) == {1: "invalid UTF-8 bytes in row"}
    assert [r.title for r in items if isinstance(r, MediaRecord)] == ["Heat"]


# --- generated input -------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r"), max_size=30)
LINE = TEXT.map(lambda s: " ".join(s.split())).filter(bool)
PARAGRAPH = TEXT.map(str.strip).filter(bool)
KEYWORD = TEXT.map(lambda s: " ".join(s.lower().split())).filter(bool)
BIG_ID = st.integers(1, 2**63 - 1)


@st.composite
def media_records(draw: st.DrawFn) -> MediaRecord:
    release = draw(st.none() | st.dates(date(1800, 1, 1), date(2200, 12, 31)).map(date.isoformat))
    return MediaRecord(
        source="jsonl",
        title=draw(LINE),
        media_type=draw(st.sampled_from(MEDIA_TYPES)),
        original_title=draw(st.none() | LINE),
        overview=draw(st.none() | PARAGRAPH),
        tagline=draw(st.none() | LINE),
        genres=draw(st.lists(st.sampled_from(GENRES), unique=True)),
        keywords=draw(st.lists(KEYWORD, unique=True, max_size=5)),
        release_date=release,
        year=draw(st.none() | st.integers(1800, 2200)) if release is None else int(release[:4]),
        runtime=draw(st.none() | st.integers(1, 10**6)),
        vote_average=draw(st.none() | st.floats(0, 10)),
        vote_count=draw(st.none() | st.integers(0, 2**63 - 1)),
        popularity=draw(st.none() | st.floats(0, 1e12)),
        language=draw(st.none() | LINE),
        poster_path=draw(st.none() | PARAGRAPH),
        tmdb_id=draw(st.none() | BIG_ID),
        imdb_id=draw(st.none() | st.integers(1, 10**9).map(lambda n: f"tt{n:07d}")),
        movielens_id=draw(st.none() | BIG_ID),
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(media_records(), min_size=1, max_size=5))
def test_jsonl_round_trip(records: list[MediaRecord], scratch: Path) -> None:
    path = scratch / "round-trip.jsonl"
    lines = [json.dumps(record.to_dict(), ensure_ascii=False) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert list(read_records(path)) == records


CSV_HEADERS = [
    b"movieId,title,genres\n",
    b"movieId,imdbId,tmdbId\r\n",
    b"id,keywords\n",
    (DATA / "tmdb-5000/tmdb_5000_movies.csv").open("rb").readline(),
    (DATA / "the-movies-dataset/movies_metadata_part1.csv").open("rb").readline(),
    b"",
]
CSV_PIECES = st.sampled_from(
    [
        b",",
        b'"',
        b"\n",
        b"\r\n",
        b"\r",
        b"1",
        b"862.0",
        b"-5",
        b"(1995)",
        b"[{'name': 'x'}]",
        b"\xff",
        b"\x00",
        b"{",
    ]
)
CSV_BODY = st.lists(CSV_PIECES | st.binary(max_size=6), max_size=40).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.sampled_from(CSV_HEADERS), body=CSV_BODY, fmt=st.sampled_from([None, *FORMATS]))
def test_arbitrary_bytes_never_raise_past_a_reject(
    header: bytes, body: bytes, fmt: str | None, scratch: Path
) -> None:
    path = scratch / "arbitrary.csv"
    path.write_bytes(header + body)
    try:
        items = list(read_records(path, fmt))
    except IngestError:
        return
    assert all(isinstance(item, MediaRecord | Reject) for item in items)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
FIELD_NAMES = st.sampled_from([*MediaRecord.__dataclass_fields__, "colour"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(objects=st.lists(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=8), min_size=1, max_size=5))
def test_any_json_object_becomes_a_record_or_a_reject(
    objects: list[dict[str, object]], scratch: Path
) -> None:
    path = scratch / "arbitrary.jsonl"
    path.write_text("\n".join(json.dumps(obj) for obj in objects) + "\n", encoding="utf-8")
    items = list(read_records(path, "jsonl"))
    assert len(items) == len(objects)
    for item, obj in zip(items, objects, strict=True):
        if isinstance(item, MediaRecord):
            assert item.title == " ".join(str(obj["title"]).split())
        else:
            assert isinstance(item, Reject) and item.reason
