"""The in-memory search result cache: copies are the caller's own, stale results are never stored."""

from __future__ import annotations

import json
import threading

import numpy as np

from metamedia.search.cache import MemoryResultCache

RESULT = {"query": "space", "results": [{"id": 1, "score": 0.5, "reasons": ["a", "b"]}], "took_ms": 1.5}


def test_hit_returns_an_equal_copy_that_the_caller_may_change() -> None:
    cache = MemoryResultCache(4)
    key = (cache.generation(), "space", 10, ())
    cache.put(key, RESULT)
    first = cache.get(key)
    assert first == RESULT
    assert first is not None
    first["results"][0]["reasons"].append("changed by the caller")
    assert cache.get(key) == RESULT
    assert cache.hits == 2


def test_results_computed_before_a_write_are_not_stored() -> None:
    cache = MemoryResultCache(4)
    key = (cache.generation(), "space", 10, ())
    cache.invalidate()  # a write landed while the search ran
    cache.put(key, RESULT)
    assert cache.get(key) is None and cache.get((cache.generation(), "space", 10, ())) is None


def test_a_value_that_is_not_json_is_simply_not_cached() -> None:
    cache = MemoryResultCache(4)
    key = (cache.generation(), "q", 1, ())
    cache.put(key, {"vector": np.zeros(2)})
    assert cache.get(key) is None


def test_least_recently_used_entry_is_dropped() -> None:
    cache = MemoryResultCache(2)
    keys = [(cache.generation(), str(i), 1, ()) for i in range(3)]
    cache.put(keys[0], RESULT)
    cache.put(keys[1], RESULT)
    assert cache.get(keys[0]) == RESULT  # keys[0] is now the most recent
    cache.put(keys[2], RESULT)
    assert cache.get(keys[1]) is None and cache.get(keys[0]) == RESULT and cache.get(keys[2]) == RESULT


def test_text_of_gives_the_json_put_made_of_that_very_result_in_this_thread_only() -> None:
    cache = MemoryResultCache()
    value = {"results": [{"id": 1, "title": "Amélie", "score": 0.5}], "took_ms": 1.0}
    cache.put((cache.generation(), "q"), value)
    assert cache.text_of(value) == json.dumps(value, separators=(",", ":"), allow_nan=False)
    assert cache.text_of(dict(value)) is None  # an equal copy is not the answer that was encoded
    seen: list[str | None] = []
    worker = threading.Thread(target=lambda: seen.append(cache.text_of(value)))
    worker.start()
    worker.join()
    assert seen == [None]
