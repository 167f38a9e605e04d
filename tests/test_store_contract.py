"""The catalog-store contract, run on every backend: embedded SQLite and a real PostgreSQL.

Both stores get their schema from the same migrations and must behave identically on a slice
of the real data: same items, same merges, same errors, same export byte for byte.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from metamedia.errors import InvalidInput, ItemNotFound
from metamedia.ingest.export import export_catalog
from metamedia.ingest.run import ingest_files
from metamedia.store.base import ItemWrite, SourceRow
from metamedia.store.lexical import is_lexical_object
from metamedia.store.migrations import VERSION_TABLE, current_revision, head_revision, upgrade_schema
from metamedia.store.postgres import open_pg_store
from metamedia.store.schema import embedding_cache, metadata
from metamedia.store.sql import SqlCatalogStore
from tests.conftest import DATA, MOVIELENS, write_csv_slice

MODEL = "all-MiniLM-L6-v2"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="module")
def real_slice(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Real rows from four source files that overlap on the first MovieLens titles."""
    tmp = tmp_path_factory.mktemp("contract_slice")
    return [
        write_csv_slice(DATA / "the-movies-dataset" / "movies_metadata_part1.csv", tmp / "mm.csv", 150),
        write_csv_slice(DATA / "tmdb-5000" / "tmdb_5000_movies.csv", tmp / "tmdb.csv", 150),
        write_csv_slice(DATA / "the-movies-dataset" / "keywords.csv", tmp / "keywords.csv", 150),
        write_csv_slice(MOVIELENS / "movies.csv", tmp / "ml_movies.csv", 150),
        write_csv_slice(MOVIELENS / "links.csv", tmp / "ml_links.csv", 150),
    ]


def open_backend(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> SqlCatalogStore:
    if backend == "sqlite":
        store = SqlCatalogStore(f"sqlite:///{tmp_path}/contract.db")
        upgrade_schema(store.engine)
        return store
    return open_pg_store(request.getfixturevalue("pg_url"))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlCatalogStore]:
    s = open_backend(request.param, tmp_path, request)
    yield s
    s.close()


@pytest.fixture
def ingested(store: SqlCatalogStore, real_slice: list[Path]) -> SqlCatalogStore:
    ingest_files(store, real_slice, model_name=MODEL)
    return store


def _write(title: str, **fields: object) -> ItemWrite:
    base: dict[str, object] = {
        "title": title,
        "media_type": "movie",
        "genres": [],
        "keywords": [],
        "source": "t",
    }
    base.update(fields)
    return ItemWrite(item_id=None, fields=base, sources=[SourceRow("t", "test", {"title": title})])


def test_schema_from_migrations_matches_the_table_definitions(store: SqlCatalogStore) -> None:
    """The catalog tables; the other layers' tables are compared in test_schema_migrations.py."""
    assert current_revision(store.engine) == head_revision()

    def catalog_only(name: str | None, type_: str, parent_names: object) -> bool:
        if is_lexical_object(name):  # the full-text index: store/lexical.py, tests/test_lexical_contract.py
            return False
        return type_ != "table" or name in metadata.tables

    opts = {"version_table": VERSION_TABLE, "include_name": catalog_only}
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), metadata)
    assert diff == []


def test_upgrading_twice_is_a_no_op(ingested: SqlCatalogStore) -> None:
    before = ingested.count_items()
    upgrade_schema(ingested.engine)
    assert ingested.count_items() == before


def test_real_slice_merges_across_files(ingested: SqlCatalogStore) -> None:
    ids = ingested.find_ids("tmdb_id", [862, 8844])
    toy_story = ingested.get_item(ids[862])
    assert toy_story.title == "Toy Story"
    assert toy_story.movielens_id == 1 and toy_story.imdb_id == "tt0114709"
    assert "toy" in toy_story.keywords
    assert "Animation" in toy_story.genres
    assert set(toy_story.source.split(",")) >= {"movies_metadata", "tmdb_keywords", "movielens_movies"}
    sources = ingested.load_sources([ids[862]])[ids[862]]
    assert {s.source for s in sources} >= {"movies_metadata", "tmdb_keywords", "movielens_movies"}
    assert all(isinstance(s.data, dict) and s.data for s in sources)


def test_reingest_changes_nothing(ingested: SqlCatalogStore, real_slice: list[Path]) -> None:
    before = {it.id: it for it in ingested.iter_items()}
    again = ingest_files(ingested, real_slice, model_name=MODEL)
    assert (again.inserted, again.updated, again.changed_ids) == (0, 0, [])
    assert {it.id: it for it in ingested.iter_items()} == before


def test_iteration_lookup_and_batches_agree(ingested: SqlCatalogStore) -> None:
    ids = ingested.item_ids()
    assert ids == sorted(ids) and len(ids) == ingested.count_items() > 150
    assert [it.id for it in ingested.iter_items(batch_size=7)] == ids
    some = ids[::10]
    got = ingested.get_items([*some, 10**9])
    assert sorted(got) == some
    assert all(got[i] == ingested.get_item(i) for i in some[:5])


def test_missing_items_and_bad_keys_raise_named_errors(ingested: SqlCatalogStore) -> None:
    with pytest.raises(ItemNotFound):
        ingested.get_item(10**9)
    with pytest.raises(ItemNotFound):
        ingested.delete_item(10**9)
    with pytest.raises(InvalidInput):
        ingested.find_ids("title", ["Toy Story"])
    assert ingested.find_ids("imdb_id", ["tt0114709", "tt0000000", None]).keys() == {"tt0114709"}


def test_write_update_absorb_and_delete(store: SqlCatalogStore) -> None:
    first, dup = store.write_items([_write("Alpha", tmdb_id=1), _write("Alpha copy", imdb_id="tt1")])
    assert store.count_items() == 2
    [same] = store.write_items(
        [
            ItemWrite(
                first,
                {"title": "Alpha", "year": 2001, "imdb_id": "tt2"},
                [SourceRow("u", "o", {"y": 1})],
                [dup],
            )
        ]
    )
    assert same == first and store.count_items() == 1
    item = store.get_item(first)
    assert (item.year, item.imdb_id, item.tmdb_id) == (2001, "tt2", 1)
    assert {s.source for s in store.load_sources([first])[first]} == {"t", "u"}
    assert store.load_sources([dup])[dup] == []
    store.delete_item(first)
    assert store.count_items() == 0 and store.load_sources([first])[first] == []


def test_unique_external_ids_reject_the_whole_batch(store: SqlCatalogStore) -> None:
    store.write_items([_write("One", tmdb_id=42)])
    with pytest.raises(IntegrityError):
        store.write_items([_write("Two", movielens_id=7), _write("Three", tmdb_id=42)])
    assert [it.title for it in store.iter_items()] == ["One"]
    assert store.find_ids("movielens_id", [7]) == {}


def test_embeddings_round_trip_exactly_and_are_not_overwritten(store: SqlCatalogStore) -> None:
    rng = np.random.default_rng(7)
    vectors = {f"h{i}": rng.standard_normal(384).astype(np.float32) for i in range(5)}
    store.put_embeddings(MODEL, vectors)
    store.put_embeddings(MODEL, {"h0": np.zeros(384, dtype=np.float32)})
    got = store.get_embeddings(["h0", "h3", "missing"])
    assert got.keys() == {"h0", "h3"}
    assert np.array_equal(got["h0"], vectors["h0"]) and np.array_equal(got["h3"], vectors["h3"])


def test_items_without_embedding_and_writers_racing_on_one_vector(store: SqlCatalogStore) -> None:
    """What `ingest --ray` resumes from, and its idempotent batch write: several workers (or a retried
    batch) writing the same new vectors at once all succeed and leave one row per hash."""
    store.write_items([_write(t, content_hash=h) for t, h in (("One", "ha"), ("Two", "hb"), ("Three", "ha"))])
    one, two, three = store.item_ids()
    assert store.ids_without_embedding() == [one, two, three]
    rng = np.random.default_rng(3)
    store.put_embeddings(MODEL, {"ha": rng.standard_normal(384).astype(np.float32)})
    assert store.ids_without_embedding() == [two]  # two items share the stored text hash

    fresh = {h: rng.standard_normal(384).astype(np.float32) for h in ("hb", "hc", "hd")}
    barrier = threading.Barrier(6)

    def write() -> None:
        barrier.wait(timeout=60)
        store.put_embeddings(MODEL, fresh)

    with ThreadPoolExecutor(6) as pool:
        for future in [pool.submit(write) for _ in range(6)]:
            future.result(timeout=120)  # re-raises a writer's error (a duplicate key before the fix)
    assert store.ids_without_embedding() == []
    got = store.get_embeddings(["ha", *fresh])
    assert len(got) == 4 and all(np.array_equal(got[h], v) for h, v in fresh.items())
    with store.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(embedding_cache)).scalar_one() == 4


def test_meta_values_overwrite(store: SqlCatalogStore) -> None:
    assert store.get_meta("k") is None
    store.set_meta("k", "one")
    store.set_meta("k", "two ✓")
    assert store.get_meta("k") == "two ✓"


def test_orphans_of_a_file_are_replaced_not_duplicated(store: SqlCatalogStore) -> None:
    rows = [
        SourceRow("links", "f.csv", {"tmdb_id": 5, "imdb_id": "tt5"}),
        SourceRow("links", "f.csv", {"tmdb_id": 6}),
    ]
    store.replace_orphans([("links", "f.csv")], rows)
    store.replace_orphans([("links", "f.csv")], rows[:1])
    store.replace_orphans([("links", "other.csv")], [SourceRow("links", "other.csv", {"tmdb_id": 6})])
    found = store.find_orphans("tmdb_id", [5, 6, 7])
    assert sorted((o.origin, o.data["tmdb_id"]) for o in found) == [("f.csv", 5), ("other.csv", 6)]


@pytest.mark.postgres
def test_both_backends_export_the_same_catalog(real_slice: list[Path], tmp_path: Path, pg_url: str) -> None:
    lite = SqlCatalogStore(f"sqlite:///{tmp_path}/x.db")
    upgrade_schema(lite.engine)
    pg = open_pg_store(pg_url)
    exports = []
    for name, s in (("sqlite", lite), ("pg", pg)):
        ingest_files(s, real_slice, model_name=MODEL)
        exports.append(export_catalog(s, tmp_path / f"{name}.jsonl"))
        s.close()
    assert exports[0] == exports[1] > 150
    assert (tmp_path / "sqlite.jsonl").read_bytes() == (tmp_path / "pg.jsonl").read_bytes()
