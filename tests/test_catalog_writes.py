"""Single-item writes through the engine (what POST/PUT/DELETE /admin/items and MCP call)."""

from __future__ import annotations

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
