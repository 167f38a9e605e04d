"""Search relevance and behaviour on the real TMDB 5000 catalog, through the library API."""

from __future__ import annotations

import numpy as np
import pytest

from metamedia.errors import InvalidQuery, ItemNotFound


def _genres(results: list[dict]) -> list[set[str]]:
    return [set(r["genres"]) for r in results]


def test_space_adventure_with_aliens_returns_science_fiction_with_reasons(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    out = catalog_engine.search("space adventure with aliens", 10)
    results = out["results"]
    assert len(results) == 10
    scifi = sum("Science Fiction" in g for g in _genres(results))
    assert scifi >= 7, [r["title"] for r in results]
    assert all(r["reasons"] for r in results)
    assert any("plot similar to your query" in " ".join(r["reasons"]) for r in results)
    assert out["query"]["genres"] == ["Science Fiction", "Adventure"]  # "space", "aliens" imply it
    scores = [r["score"] for r in results]
    assert max(scores) == scores[0]


def test_funny_space_movies_pull_on_plot_and_genre(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    results = catalog_engine.search("funny space movies", 10)["results"]
    comedy = [r for r in results if "Comedy" in r["genres"]]
    assert len(comedy) >= 6
    # the plot part ("space") still matters: space comedies are among the top results
    assert any("Science Fiction" in r["genres"] for r in comedy[:5]), [r["title"] for r in results]


def test_parsed_years_runtime_and_rating_are_hard_filters(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    results = catalog_engine.search("highly rated 90s thrillers under 2 hours", 20)["results"]
    assert results
    for r in results:
        assert 1990 <= r["year"] <= 1999
        assert r["runtime"] <= 120
        assert r["vote_average"] >= 7.5
    # only 6 of the 24 catalog films passing these filters are thrillers: all of them come first
    thrillers = [i for i, r in enumerate(results) if "Thriller" in r["genres"]]
    assert len(thrillers) == 6 and max(thrillers) <= 7, [r["title"] for r in results]


def test_explicit_filters_and_genre_parameter(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    out = catalog_engine.search("a heist", 15, genres=["crime"], year_min=2000, year_max=2010, rating_min=6)
    assert out["results"]
    for r in out["results"]:
        assert "Crime" in r["genres"] and 2000 <= r["year"] <= 2010 and r["vote_average"] >= 6


def test_a_selective_filter_still_returns_k_results(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    # Westerns from the 1960s are a tiny slice of the catalog: filtering must happen inside the search
    out = catalog_engine.search("gunfight", 5, genres=["Western"], year_min=1960, year_max=1969, trend=False)
    assert len(out["results"]) == 5
    assert all("Western" in r["genres"] and 1960 <= r["year"] <= 1969 for r in out["results"])


def test_excluded_genres_never_appear(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    results = catalog_engine.search("suspenseful mystery, no horror", 20)["results"]
    assert results and all("Horror" not in r["genres"] for r in results)


def test_more_like_this(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    toy_story = catalog_engine.store.find_ids("tmdb_id", [862])[862]
    out = catalog_engine.similar(toy_story, 10)
    titles = [r["title"] for r in out["results"]]
    assert "Toy Story" not in titles
    assert {"Toy Story 2", "Toy Story 3"} & set(titles), titles
    assert all(r["reasons"] for r in out["results"])
    assert "shares genres" in " ".join(out["results"][0]["reasons"])


def _spread(engine, rows: list[dict]) -> float:  # type: ignore[no-untyped-def]
    """Mean pairwise (1 - cosine) of the results' stored vectors: how varied the list looks."""
    vecs = np.stack(list(engine.media.get_vectors([r["id"] for r in rows])))
    sims = vecs @ vecs.T
    return float((1.0 - sims)[np.triu_indices(len(rows), 1)].mean())


def test_diversity_rerank_spreads_results(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    # A description: diversity swaps near-duplicates out of the top 10 for other relevant films.
    plain = catalog_engine.search("superhero movies", 10, diversity=False, trend=False)["results"]
    diverse = catalog_engine.search("superhero movies", 10, diversity=True, trend=False)["results"]
    assert {r["id"] for r in plain} != {r["id"] for r in diverse}
    assert _spread(catalog_engine, diverse) > _spread(catalog_engine, plain)
    # A name: only the films that match "batman" are relevant enough to stay in the top 10, so diversity
    # re-orders them (the first screen is more varied) instead of swapping in unrelated films.
    plain = catalog_engine.search("batman", 10, diversity=False, trend=False)["results"]
    diverse = catalog_engine.search("batman", 10, diversity=True, trend=False)["results"]
    assert [r["id"] for r in plain] != [r["id"] for r in diverse]
    assert _spread(catalog_engine, diverse[:5]) > _spread(catalog_engine, plain[:5])
    assert all("batman" in r["title"].lower() or "dark knight" in r["title"].lower() for r in diverse[:4])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 0},
        {"k": 1001},
        {"year_min": 2010, "year_max": 2000},
        {"rating_min": 11},
        {"genres": ["not-a-genre"]},
        {"media_type": "podcast"},
        {"ef": 0},
    ],
)
def test_bad_parameters_raise_invalid_query(catalog_engine, kwargs) -> None:  # type: ignore[no-untyped-def]
    k = kwargs.pop("k", 10)
    with pytest.raises(InvalidQuery):
        catalog_engine.search("space", k, **kwargs)


def test_empty_and_overlong_queries_are_rejected(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidQuery):
        catalog_engine.search("   ", 10)
    with pytest.raises(InvalidQuery):
        catalog_engine.search("x" * 501, 10)


def test_unknown_item(catalog_engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ItemNotFound):
        catalog_engine.similar(10**9, 5)
    with pytest.raises(ItemNotFound):
        catalog_engine.get_item(10**9)
