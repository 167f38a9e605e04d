"""What keeps a new search cheap: the item cache (fresh after any process's write) and CPU slots."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from metamedia.engine import Engine
from metamedia.models import MediaItem
from metamedia.search.items import ItemCache
from metamedia.search.slots import CpuSlots
from metamedia.settings import Settings
from metamedia.store.base import ItemWrite
from metamedia.store.factory import open_store


def fields(title: str, genre: str) -> dict[str, Any]:
    return asdict(MediaItem(id=0, title=title, genres=[genre]))


def test_item_cache_serves_what_another_process_wrote_after_its_generation_bump(tmp_path: Path) -> None:
    url = Settings(data_dir=tmp_path).resolved_database_url
    ours, theirs = open_store(url), open_store(url)  # two stores: two processes' view of one database
    try:
        [item_id] = ours.write_items([ItemWrite(None, fields("Before", "Drama"))])
        ours.bump_generation()
        cache = ItemCache(ours)
        assert cache.get_items([item_id, 999])[item_id].title == "Before"
        assert cache.get_items([item_id])[item_id].title == "Before" and cache.hits == 1
        theirs.write_items([ItemWrite(item_id, fields("After", "Comedy"))])
        theirs.bump_generation()  # what every acknowledged write does (Engine.mark_changed)
        fresh = cache.get_items([item_id])[item_id]
        assert (fresh.title, fresh.genres) == ("After", ["Comedy"])
        theirs.delete_item(item_id)
        theirs.bump_generation()
        assert cache.get_items([item_id]) == {}
    finally:
        ours.close()
        theirs.close()


def test_cpu_slots_bound_concurrent_work_and_are_given_back_while_waiting() -> None:
    slots = CpuSlots(2)
    lock = threading.Lock()
    running, peak, paused_peak = [0], [0], [0]
    gate = threading.Event()

    def work() -> None:
        with slots.hold(), slots.hold():  # re-entrant: a nested hold takes no second slot
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            with slots.paused():  # waiting (e.g. for the embedder): others may run meanwhile
                with lock:
                    paused_peak[0] += 1
                gate.wait(10)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while paused_peak[0] < 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert paused_peak[0] == 6  # all six got in while earlier ones were paused
    gate.set()
    for t in threads:
        t.join(10)
    assert peak[0] == 2
    with slots.paused():  # a thread holding no slot gives nothing back
        pass
    with slots.hold():
        pass


def test_cached_search_text_is_the_search_answer_until_the_next_write(
    tmp_path: Path, one_thread_embedder: Any
) -> None:
    engine = Engine(Settings(data_dir=tmp_path), embedder=one_thread_embedder)
    try:
        engine.put_item({"title": "Harbour Lights", "overview": "A lighthouse keeper falls for a sailor."})
        assert engine.cached_search_text("lighthouse keeper", 5, trend=False) is None  # not searched yet
        answer = engine.search("lighthouse keeper", 5, trend=False)
        text = engine.cached_search_text("lighthouse keeper", 5, trend=False)
        assert text is not None and json.loads(text) == answer
        assert engine.cached_search_text("lighthouse keeper", 5, trend=True) is None  # other options
        engine.put_item({"title": "Lighthouse Keeper", "overview": "Another keeper of another light."})
        assert engine.cached_search_text("lighthouse keeper", 5, trend=False) is None
        titles = [r["title"] for r in engine.search("lighthouse keeper", 5, trend=False)["results"]]
        assert "Lighthouse Keeper" in titles
    finally:
        engine.close()


def test_a_pending_write_admits_searches_to_one_slot_until_it_is_done() -> None:
    slots = CpuSlots(4)
    lock = threading.Lock()
    running, peak = [0], [0]
    release = threading.Event()

    def search() -> None:
        with slots.hold():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            release.wait(10)
            with lock:
                running[0] -= 1

    with slots.writing():
        threads = [threading.Thread(target=search) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        assert running[0] == 1  # three searches wait while the write is pending
        assert slots.writes_pending == 1
    deadline = time.monotonic() + 10
    while running[0] < 4 and time.monotonic() < deadline:  # the write is done: all four run
        time.sleep(0.01)
    assert peak[0] == 4
    release.set()
    for t in threads:
        t.join(10)
    assert slots.writes_pending == 0
