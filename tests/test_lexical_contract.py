"""Lexical index contract, on SQLite (FTS5) and a real PostgreSQL (tsvector + GIN).

What a user notices: an acknowledged write is searchable by its words at once, an update replaces
the old words, a delete disappears, and a title match outranks an overview-only match.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metamedia.store.base import ItemWrite
from metamedia.store.factory import open_store
from metamedia.store.lexical import LexicalIndex, open_lexical_index, query_terms
from metamedia.store.sql import SqlCatalogStore

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlCatalogStore]:
    url = (
        f"sqlite:///{tmp_path / 'lex.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    opened = open_store(url)
    yield opened
    opened.close()


def _write(store: SqlCatalogStore, item_id: int | None = None, **fields: Any) -> int:
    row = {
        "media_type": "movie",
        "genres": [],
        "keywords": [],
        "source": "test",
        "content_hash": "h",
    } | fields
    return store.write_items([ItemWrite(item_id, row)])[0]


def _ids(index: LexicalIndex, query: str) -> list[int]:
    return [h.item_id for h in index.search(query, 10)]


def test_a_write_is_searchable_at_once_and_title_outranks_overview(store: SqlCatalogStore) -> None:
    index = open_lexical_index(store.db)
    assert _ids(index, "submarine") == []
    plot = _write(store, title="Deep Water", overview="A crew is trapped in a submarine under the ice.")
    named = _write(store, title="Submarine", overview="A Welsh teenager tries to lose his virginity.")
    _write(store, title="Heat", overview="A bank robbery in Los Angeles.", genres=["Crime"])
    assert _ids(index, "submarine") == [named, plot]
    assert _ids(index, "submarines") == [named, plot]  # stemmed on both backends


def test_keywords_genres_and_original_title_are_matched(store: SqlCatalogStore) -> None:
    index = open_lexical_index(store.db)
    a = _write(store, title="Amélie", original_title="Le Fabuleux Destin d'Amélie Poulain", genres=["Comedy"])
    b = _write(store, title="Alien", keywords=["spaceship", "extraterrestrial"], genres=["Horror"])
    assert _ids(index, "fabuleux destin") == [a]
    assert _ids(index, "spaceship") == [b]
    assert _ids(index, "horror") == [b]


def test_update_replaces_the_words_and_delete_disappears(store: SqlCatalogStore) -> None:
    index = open_lexical_index(store.db)
    item = _write(store, title="Working Title", overview="A heist in a casino.")
    assert _ids(index, "casino heist") == [item]
    _write(
        store, item, title="Ocean Eleven", overview="Friends rob three casinos at once.", content_hash="h2"
    )
    assert _ids(index, "working") == []
    assert _ids(index, "ocean") == [item]
    store.delete_item(item)
    assert _ids(index, "ocean casino") == []


def test_any_word_may_match_and_more_matches_rank_higher(store: SqlCatalogStore) -> None:
    index = open_lexical_index(store.db)
    both = _write(store, title="Space Pirates", overview="Pirates raid a freighter in deep space.")
    one = _write(store, title="Pirate Radio", overview="A ship broadcasts rock music.")
    assert _ids(index, "space pirates") == [both, one]


def test_operator_characters_and_stop_words_are_plain_text(store: SqlCatalogStore) -> None:
    index = open_lexical_index(store.db)
    item = _write(store, title="Mission: Impossible", overview="An agent is disavowed.")
    for query in [
        'mission: "impossible',
        "mission AND NOT impossible*",
        "(mission) | impossible & !x",
        "NEAR(mission",
    ]:
        assert _ids(index, query) == [item], query
    assert _ids(index, "the of and") == []
    assert query_terms("Show me THE Matrix!") == ["matrix"]


def test_title_search_needs_every_word_in_the_title(store: SqlCatalogStore) -> None:
    index = open_lexical_index(store.db)
    odyssey = _write(store, title="2001: A Space Odyssey", overview="Humanity finds a mysterious monolith.")
    _write(store, title="Space Jam", overview="An odyssey of basketball.")
    amelie = _write(store, title="Amélie", original_title="Le Fabuleux Destin d'Amélie Poulain")
    assert [h.item_id for h in index.search_titles("2001 a space odyssey")] == [odyssey]
    assert [h.item_id for h in index.search_titles("fabuleux destin")] == [amelie]
    assert index.search_titles("space basketball") == []
    assert index.search_titles("fabuleux destin")[0].titles == (
        "Amélie",
        "Le Fabuleux Destin d'Amélie Poulain",
    )


def test_search_all_needs_every_word_somewhere_in_the_item(store: SqlCatalogStore) -> None:
    index = open_lexical_index(store.db)
    heist = _write(store, title="The Job", overview="A bank robbery goes wrong.", keywords=["heist"])
    _write(store, title="Bank Holiday", overview="A family trip.")
    assert [h.item_id for h in index.search_all("bank heist")] == [heist]
    assert [h.item_id for h in index.search_all("robbery")] == [heist]
    assert index.search_all("tom hanks") == []
    store.delete_item(heist)
    assert index.search_all("bank heist") == []


def test_items_of_origin_by_language_or_country_most_voted_first(store: SqlCatalogStore) -> None:
    from metamedia.store.origin import items_of_origin

    amelie = _write(
        store, title="Amélie", language="fr", countries=["France"], vote_count=5000, genres=["Comedy"]
    )
    haine = _write(store, title="La Haine", language="fr", countries=["France"], vote_count=900)
    snatch = _write(store, title="Snatch", language="en", countries=["United Kingdom"], vote_count=4000)
    _write(store, title="Niger Story", language="en", countries=["Nigeria"], vote_count=10)
    assert items_of_origin(store.db, ["fr"], []) == [(amelie, ["Comedy"]), (haine, [])]
    assert [i for i, _ in items_of_origin(store.db, [], ["United Kingdom"])] == [snatch]
    assert [i for i, _ in items_of_origin(store.db, ["fr"], ["United Kingdom"])] == [amelie, snatch, haine]
    assert items_of_origin(store.db, [], ["Niger"]) == []  # a country name inside another is no match
    assert items_of_origin(store.db, [], ["100%_"]) == []  # LIKE wildcards in a name are literal
