"""The catalog generation read gated on the change beacon (store/generations.py): on SQLite a search
reads the counter from the store only when the beacon moved, and every kind of writer in another
process (a catalog item write, a CLI ingest) moves the beacon after its commit, so this process's
item cache and recommender snapshot move on at their next read. The re-read after `max_age_s` is
switched off here: what these tests see comes from the beacon alone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from metamedia.engine import Engine
from metamedia.settings import Settings
from metamedia.store.factory import open_store
from metamedia.store.generations import CATALOG, Generation
from tests.conftest import TMDB_5000, cli_ingest, write_csv_slice
from tests.test_engine_processes import NEW_ITEM, QUERY, OtherEngine


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[tuple[Engine, OtherEngine]]:
    base = tmp_path_factory.mktemp("gate")
    engine = Engine(Settings(data_dir=base / "data"), embedder=embedder)
    engine.ingest([write_csv_slice(TMDB_5000, base / "slice.csv", 30)])
    engine.store.catalog_changes.max_age_s = float("inf")  # only the beacon may move the view on
    other = OtherEngine(base / "data")
    yield engine, other
    other.stop()
    engine.close()


def _generation_reads(engine: Engine) -> list[str]:
    """Statements that read the catalog counter, recorded from now on."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "metamedia_meta" in statement and "generation:catalog" in str(args[0]):
            seen.append(statement)

    event.listen(engine.db, "before_cursor_execute", record)
    return seen


def test_the_counter_is_read_from_sql_only_after_the_beacon_moved(
    engines: tuple[Engine, OtherEngine],
) -> None:
    engine, _ = engines
    assert engine.store.backend == "sqlite"
    first = engine.store.generation()
    reads = _generation_reads(engine)
    for _ in range(5):
        engine.search(QUERY + " again", k=5)
        engine.search_pipeline.items.get_items([1, 2, 3])
        assert engine.store.generation() == first
    assert reads == []  # searches and item reads answered from the remembered number
    engine.beacon.bump()  # a commit elsewhere that did not touch the catalog
    assert engine.store.generation() == first
    assert len(reads) == 1
    assert engine.store.generation() == first
    assert len(reads) == 1


def test_an_item_written_in_another_process_moves_this_view_on(engines: tuple[Engine, OtherEngine]) -> None:
    engine, other = engines
    before = engine.store.generation()
    snapshot = engine.recs.models.catalog()
    new_id = other.ask("put", {**NEW_ITEM, "title": "Gate Island", "year": 2034})
    assert engine.store.generation() > before
    fresh = engine.recs.models.catalog()
    assert fresh is not snapshot
    assert new_id in set(fresh.item_ids.tolist())  # the recommender's catalog holds the new item
    assert new_id in [r["id"] for r in engine.search(QUERY, k=5)["results"]]


def test_a_cli_ingest_in_another_process_refreshes_the_item_cache(
    engines: tuple[Engine, OtherEngine], tmp_path: Path
) -> None:
    engine, _ = engines
    query = "a crime drama in the city"
    hit = engine.search(query, k=5)["results"][0]
    item = engine.get_item(hit["id"])
    assert engine.search_pipeline.items.get_items([item.id])[item.id].title == item.title  # cached here
    before = engine.store.generation()
    renamed = item.title + " (Restored)"
    catalog = tmp_path / "rename.jsonl"
    catalog.write_text(json.dumps({"title": renamed, "tmdb_id": item.tmdb_id, "year": item.year}) + "\n")
    done = cli_ingest(engine.settings.data_dir, catalog)
    assert done.returncode == 0, done.stderr[-2000:]
    assert engine.store.generation() > before
    assert engine.search_pipeline.items.get_items([item.id])[item.id].title == renamed
    titles = [r["title"] for r in engine.search(query, k=10)["results"]]
    assert renamed in titles
    assert item.title not in titles


def test_a_writer_that_does_not_know_the_beacon_is_seen_within_max_age(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gate.db'}")
    try:
        watched = Generation(store.db, CATALOG)
        watched.watch(lambda: 7)  # a beacon that never moves
        watched.max_age_s = 1.0
        first = watched.generation()
        Generation(store.db, CATALOG).bump()  # e.g. a restore into the live database
        assert watched.generation() == first  # remembered while the beacon stands still
        time.sleep(1.1)
        assert watched.generation() == first + 1
        watched.bump()  # this object's own bump is read back at once
        assert watched.generation() == first + 2
    finally:
        store.close()
