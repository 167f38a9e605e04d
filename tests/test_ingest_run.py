"""Ingest into the store of record: merge across files, idempotency, order independence, rejects."""

from __future__ import annotations

from pathlib import Path

import pytest

from metamedia.errors import IngestError
from metamedia.ingest.export import export_catalog
from metamedia.ingest.run import ingest_files
from metamedia.store.factory import open_store
from metamedia.store.sql import SqlCatalogStore
from tests.conftest import DATA, MOVIELENS, write_csv_slice

ALL_FILES = [
    DATA / "tmdb-5000" / "tmdb_5000_movies.csv",
    DATA / "the-movies-dataset" / "movies_metadata_part1.csv",
    DATA / "the-movies-dataset" / "movies_metadata_part2.csv",
    DATA / "the-movies-dataset" / "keywords.csv",
    DATA / "the-movies-dataset" / "links.csv",
    MOVIELENS / "movies.csv",
    MOVIELENS / "links.csv",
]
MODEL = "all-MiniLM-L6-v2"


def _store(tmp: Path, name: str = "s") -> SqlCatalogStore:
    return open_store(f"sqlite:///{tmp}/{name}.db")


@pytest.fixture(scope="module")
def full_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqlCatalogStore, object]:
    store = _store(tmp_path_factory.mktemp("full"))
    report = ingest_files(store, ALL_FILES, model_name=MODEL)
    return store, report


def test_all_source_files_ingest_with_a_clear_report(full_store) -> None:  # type: ignore[no-untyped-def]
    store, report = full_store
    assert [Path(f.path).name for f in report.files] == [p.name for p in ALL_FILES]
    for f in report.files:
        assert f.rows == f.parsed + f.rejected
    # every MovieLens title (9,742), merged with the metadata rows, plus the films MovieLens lacks
    assert 9_742 < store.count_items() < 9_742 + 615 + 400 + 200
    assert report.inserted == store.count_items()
    # the Movies Dataset links name hundreds of titles we have no metadata for: skipped, not invented
    assert report.skipped > 500


def test_duplicates_across_files_merge_into_one_item(full_store) -> None:  # type: ignore[no-untyped-def]
    store, _ = full_store
    ids = store.find_ids("tmdb_id", [862])
    toy_story = store.get_item(ids[862])
    assert toy_story.title == "Toy Story"
    assert toy_story.movielens_id == 1 and toy_story.imdb_id == "tt0114709"
    assert toy_story.poster_path  # only The Movies Dataset has posters
    assert "toy" in toy_story.keywords  # only keywords.csv has them for this title
    assert set(toy_story.source.split(",")) >= {"movies_metadata", "tmdb_keywords", "movielens_movies"}
    avatar = store.get_item(store.find_ids("tmdb_id", [19995])[19995])
    assert avatar.tagline == "Enter the World of Pandora."  # TMDB 5000 wins where it speaks
    assert avatar.movielens_id == 72998


def test_reingest_is_a_no_op(full_store) -> None:  # type: ignore[no-untyped-def]
    store, _ = full_store
    before = store.count_items()
    again = ingest_files(store, ALL_FILES, model_name=MODEL)
    assert (again.inserted, again.updated) == (0, 0)
    assert again.unchanged == before
    assert again.changed_ids == []
    assert store.count_items() == before


def test_file_order_does_not_change_the_catalog(tmp_path: Path) -> None:
    files = [
        write_csv_slice(DATA / "tmdb-5000" / "tmdb_5000_movies.csv", tmp_path / "tmdb.csv", 400),
        write_csv_slice(
            DATA / "the-movies-dataset" / "movies_metadata_part1.csv", tmp_path / "mm.csv", 400
        ),
        MOVIELENS / "links.csv",
        write_csv_slice(MOVIELENS / "movies.csv", tmp_path / "ml.csv", 400),
    ]
    forward, backward = _store(tmp_path, "a"), _store(tmp_path, "b")
    ingest_files(forward, files, model_name=MODEL)
    for f in reversed(files):  # one at a time, the other way round
        ingest_files(backward, [f], model_name=MODEL)
    export_catalog(forward, tmp_path / "a.jsonl")
    export_catalog(backward, tmp_path / "b.jsonl")
    a = sorted((tmp_path / "a.jsonl").read_text().splitlines())
    b = sorted((tmp_path / "b.jsonl").read_text().splitlines())
    assert a == b and len(a) > 400


def test_broken_rows_are_rejected_with_reasons_and_good_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"title": "Good One", "release_date": "2001-05-04", "genres": ["Sci-Fi"], "tmdb_id": 900001}\n'
        '{"title": "", "tmdb_id": 900002}\n'
        '{"title": "Bad Date", "release_date": "2001-13-45", "tmdb_id": 900003}\n'
        '{"title": "Negative", "runtime": -5, "tmdb_id": 900004}\n'
        "{not json\n"
        '{"title": "Good Two", "media_type": "tv", "tmdb_id": 900005}\n'
    )
    store = _store(tmp_path)
    report = ingest_files(store, [path], model_name=MODEL)
    assert report.inserted == 2 and report.rejected == 4
    assert {r.row for r in report.rejects} == {2, 3, 4, 5}
    text = " | ".join(r.reason for r in report.rejects)
    assert "title" in text and "release_date" in text and "runtime" in text and "JSON" in text
    good = store.get_item(store.find_ids("tmdb_id", [900001])[900001])
    assert good.genres == ["Science Fiction"] and good.year == 2001


def test_unknown_file_is_an_error_and_changes_nothing(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello\nworld\n")
    store = _store(tmp_path)
    with pytest.raises(IngestError):
        ingest_files(store, [bogus], model_name=MODEL)
    with pytest.raises(IngestError):
        ingest_files(store, [MOVIELENS / "ratings.csv"], model_name=MODEL)
    assert store.count_items() == 0


def test_updated_source_updates_the_item(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"title": "Draft", "tmdb_id": 5, "runtime": 90}\n')
    store = _store(tmp_path)
    first = ingest_files(store, [path], model_name=MODEL)
    path.write_text('{"title": "Final", "tmdb_id": 5, "runtime": 95}\n')
    second = ingest_files(store, [path], model_name=MODEL)
    assert (first.inserted, second.updated, second.inserted) == (1, 1, 0)
    item = store.get_item(first.changed_ids[0])
    assert (item.title, item.runtime) == ("Final", 95)
    assert second.changed_ids == first.changed_ids  # the id is stable
