"""Two engines in two OS processes over one data folder (what `serve --workers 2` and a CLI ingest
beside a running server amount to): a catalog write in one is searchable in the other at its next
request, by its vector, and the other's cached search results are not served after it."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from metamedia.engine import Engine
from metamedia.errors import NotFound
from metamedia.settings import Settings
from tests.conftest import TMDB_5000, cli_ingest, write_csv_slice

QUERY = "a lighthouse keeper and a talking octopus solve crimes on a foggy island"
NEW_ITEM = {
    "title": "The Octopus of Fog Island",
    "overview": "A lonely lighthouse keeper and a talking octopus solve crimes on a foggy island.",
    "genres": ["Mystery", "Comedy"],
    "year": 2031,
}


def _serve(data_dir: str, conn: Connection) -> None:
    """The other process: its own Engine (own model, own caches) over the same folder."""
    engine = Engine(Settings(data_dir=Path(data_dir)))
    conn.send("ready")
    while True:
        command, args = conn.recv()
        try:
            if command == "stop":
                engine.close()
                conn.send(None)
                return
            if command == "search":
                conn.send([r["id"] for r in engine.search(args[0], k=5)["results"]])
            elif command == "titles":
                conn.send([r["title"] for r in engine.search(args[0], k=5)["results"]])
            elif command == "cached":
                text = engine.cached_search_text(args[0], k=5)
                conn.send(None if text is None else [r["id"] for r in json.loads(text)["results"]])
            elif command == "similar":
                conn.send([r["id"] for r in engine.similar(args[0], k=5)["results"]])
            elif command == "has_vector":
                try:
                    engine.item_vector(args[0])
                    conn.send(True)
                except NotFound:
                    conn.send(False)
            elif command == "put":
                conn.send(engine.put_item(args[0]).id)
        except Exception as exc:
            conn.send(("error", repr(exc)))


class OtherEngine:
    def __init__(self, data_dir: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(str(data_dir), child), daemon=True)
        self.process.start()
        assert self.conn.poll(180) and self.conn.recv() == "ready"

    def ask(self, command: str, *args: Any) -> Any:
        self.conn.send((command, args))
        if not self.conn.poll(120):
            raise TimeoutError(command)
        answer = self.conn.recv()
        if isinstance(answer, tuple) and answer and answer[0] == "error":
            raise AssertionError(f"other process failed: {answer[1]}")
        return answer

    def stop(self) -> None:
        self.ask("stop")
        self.process.join(30)


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[tuple[Engine, OtherEngine]]:
    base = tmp_path_factory.mktemp("two")
    engine = Engine(Settings(data_dir=base / "data"), embedder=embedder)
    engine.ingest([write_csv_slice(TMDB_5000, base / "slice.csv", 40)])
    other = OtherEngine(base / "data")
    yield engine, other
    other.stop()
    engine.close()


def test_an_item_written_here_is_found_there_by_its_vector(engines: tuple[Engine, OtherEngine]) -> None:
    engine, other = engines
    assert other.ask("search", QUERY)  # warm: results cached there
    assert other.ask("cached", QUERY) is not None
    item = engine.put_item(NEW_ITEM)
    assert other.ask("cached", QUERY) is None  # the cached answer from before the write is not served
    here = [r["id"] for r in engine.search(QUERY, k=5)["results"]]
    assert item.id in here
    assert other.ask("search", QUERY) == here  # the same answer in both processes
    assert other.ask("has_vector", item.id)
    assert other.ask("similar", item.id)  # answered from its vector there
    engine.delete_item(item.id)
    assert item.id not in other.ask("search", QUERY)
    assert other.ask("search", QUERY) == [r["id"] for r in engine.search(QUERY, k=5)["results"]]
    assert not other.ask("has_vector", item.id)


def test_a_changed_title_is_not_served_from_the_other_cache(engines: tuple[Engine, OtherEngine]) -> None:
    engine, other = engines
    query = "spy thriller"
    first = other.ask("search", query)[0]
    assert other.ask("cached", query) is not None
    before = engine.get_item(first)
    engine.put_item({"title": before.title + " (Director's Cut)", "tmdb_id": before.tmdb_id}, first)
    titles = other.ask("titles", query)
    assert before.title + " (Director's Cut)" in titles
    assert before.title not in titles


def test_an_item_written_there_is_found_here(engines: tuple[Engine, OtherEngine]) -> None:
    engine, other = engines
    new_id = other.ask("put", {**NEW_ITEM, "title": "Fog Island Returns", "year": 2032})
    found = [r["id"] for r in engine.search(QUERY, k=5)["results"]]
    assert new_id in found
    assert engine.media.count() == engine.count()


def test_a_cli_ingest_beside_a_running_engine_is_searchable_in_it(
    engines: tuple[Engine, OtherEngine], tmp_path: Path
) -> None:
    engine, _ = engines
    catalog = tmp_path / "more.jsonl"
    record = {**NEW_ITEM, "title": "Fog Island: The Ingest", "year": 2033, "tmdb_id": 990001}
    catalog.write_text(json.dumps(record) + "\n")
    before = engine.search(QUERY, k=5)  # cached here
    done = cli_ingest(engine.settings.data_dir, catalog)
    assert done.returncode == 0, done.stderr[-2000:]
    titles = [r["title"] for r in engine.search(QUERY, k=5)["results"]]
    assert "Fog Island: The Ingest" in titles
    assert before != engine.search(QUERY, k=5)
    assert engine.media.count() == engine.count()
