"""Single-item writes through the engine (what POST/PUT/DELETE /admin/items and MCP call)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from metamedia.engine import Engine
from metamedia.errors import Conflict, ItemNotFound
from metamedia.settings import Settings


@pytest.fixture
def engine(tmp_path: Path, one_thread_embedder) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    eng = Engine(Settings(data_dir=tmp_path), embedder=one_thread_embedder)
    yield eng
    eng.close()


def spy_forward(engine: Engine) -> list[tuple[list[str], bool]]:
    """Record every model forward pass: its texts and whether the engine's write lock was held."""
    calls: list[tuple[list[str], bool]] = []
    original = engine.embedder._forward

    def forward(model: Any, texts: list[str], **kwargs: Any) -> Any:
        calls.append((list(texts), engine.write_lock._is_owned()))  # type: ignore[attr-defined]
        return original(model, texts, **kwargs)

    engine.embedder._forward = forward  # type: ignore[method-assign]
    return calls


def top_ids(engine: Engine, query: str) -> list[int]:
    return [r["id"] for r in engine.search(query, k=3)["results"]]


def test_create_update_delete_embed_once_and_never_under_the_write_lock(engine: Engine) -> None:
    engine.put_item({"title": "Harbour Lights", "overview": "A lighthouse keeper falls for a sailor."})
    calls = spy_forward(engine)
    item = engine.put_item(
        {
            "title": "Frozen Circuit",
            "overview": "A robot wakes alone in an arctic research station.",
            "tmdb_id": 901,
        }
    )
    assert calls == [(["Frozen Circuit. A robot wakes alone in an arctic research station"], False)]
    assert top_ids(engine, "robot alone in the arctic")[0] == item.id

    calls.clear()
    updated = engine.put_item({"title": "Frozen Circuit", "tmdb_id": 901}, item.id)
    assert updated.overview is None  # PUT replaces the API-written fields: the old overview is gone
    assert engine.get_item(item.id).overview is None
    assert calls == [(["Frozen Circuit"], False)]
    assert engine.check_index()["ok"]

    engine.delete_item(item.id)
    assert item.id not in top_ids(engine, "robot alone in the arctic")
    with pytest.raises(ItemNotFound):
        engine.delete_item(item.id)
    assert engine.check_index()["ok"]


def test_conflicting_external_id_changes_nothing(engine: Engine) -> None:
    first = engine.put_item({"title": "Original", "imdb_id": "tt0000001"})
    with pytest.raises(Conflict, match="tt0000001"):
        engine.put_item({"title": "Impostor", "imdb_id": "tt0000001"})
    assert engine.count() == 1 and engine.get_item(first.id).title == "Original"
    assert engine.check_index()["ok"]


def test_concurrent_writers_all_land_in_store_and_index(engine: Engine) -> None:
    titles = [f"Concurrent film {i}" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda t: engine.put_item({"title": t, "overview": f"{t} overview"}), titles))
    assert sorted(engine.get_item(c.id).title for c in created) == sorted(titles)
    report = engine.check_index()
    assert report["ok"] and report["indexed"] == 16


def test_writes_queued_behind_the_lock_commit_as_one_group_and_fail_alone(engine: Engine) -> None:
    """Writes that pile up while the write lock is held are committed together by whoever takes the
    lock next; one that conflicts with an earlier write of its group fails alone."""
    engine.put_item({"title": "Lighthouse at Dawn", "overview": "A keeper and a storm."})
    lighthouse = engine.search("keeper storm", k=1)["results"][0]["id"]
    writes: list[tuple[dict[str, Any], int | None]] = [
        ({"title": f"Grouped film {i}", "overview": f"A story about grouped film {i}."}, None)
        for i in range(5)
    ]
    writes.append(({"title": "Claims tmdb 77", "tmdb_id": 77}, None))
    writes.append(({"title": "Also claims tmdb 77", "tmdb_id": 77}, None))
    writes.append(({"title": "Lighthouse at Dusk", "overview": "A keeper and a calm sea."}, lighthouse))
    groups_before = engine.catalog_writes.groups
    outcomes = []
    with ThreadPoolExecutor(len(writes)) as pool:
        with engine.write_lock:
            futures = [pool.submit(engine.put_item, fields, item_id) for fields, item_id in writes]
            deadline = time.monotonic() + 120
            while len(engine.catalog_writes._queue) < len(writes):  # every write embedded and queued
                assert time.monotonic() < deadline, "writes never queued"
                time.sleep(0.05)
        for future in futures:
            try:
                outcomes.append(future.result(timeout=120).title)
            except Conflict as exc:
                outcomes.append(f"conflict: {exc}")
    assert engine.catalog_writes.groups == groups_before + 1
    assert outcomes[:5] == [f"Grouped film {i}" for i in range(5)]
    assert sum(o.startswith("conflict:") for o in outcomes[5:7]) == 1  # exactly one of the two got 77
    assert outcomes[7] == "Lighthouse at Dusk" and engine.get_item(lighthouse).title == "Lighthouse at Dusk"
    assert engine.count() == 1 + 5 + 1
    assert engine.search("keeper calm sea", k=1)["results"][0]["title"] == "Lighthouse at Dusk"
    assert engine.check_index()["ok"]
