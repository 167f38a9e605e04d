"""Re-ranking real MovieLens candidates: exclusions, business rules, diversity, explanations."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest

from metamedia.errors import InvalidInput
from metamedia.evaluation.data import fallback_item_vectors, load_movie_genres_and_years
from metamedia.evaluation.metrics import intra_list_diversity
from metamedia.recommend.preference import PreferenceEvent, PreferenceVector
from metamedia.recommend.rerank import Candidate, Constraints, Explainer, HistoryItem, rerank
from tests.conftest import MOVIELENS

ALIEN, ALIENS = 1214, 1200


@pytest.fixture(scope="module")
def catalog() -> dict[int, Candidate]:
    """The 60 most-rated real MovieLens movies as candidates, scored by their rating count."""
    genres, years = load_movie_genres_and_years(MOVIELENS / "movies.csv")
    vectors = fallback_item_vectors(genres, years)
    with open(MOVIELENS / "movies.csv", newline="", encoding="utf-8") as handle:
        titles = {int(row["movieId"]): row["title"] for row in csv.DictReader(handle)}
    with open(MOVIELENS / "ratings.csv", newline="", encoding="utf-8") as handle:
        counts = Counter(int(row["movieId"]) for row in csv.DictReader(handle))
    chosen = [movie for movie, _ in counts.most_common(60)] + [ALIEN, ALIENS]
    # Runtime and rating are not in MovieLens; derive stable stand-ins from the movieId for the rules.
    return {
        movie: Candidate(
            item_id=movie,
            score=float(counts[movie]),
            vector=vectors[movie],
            genres=tuple(genres[movie]),
            title=titles[movie],
            rating=float(movie % 10),
            runtime=80 + movie % 80,
            media_type="tv" if movie % 7 == 0 else "movie",
            trending=movie % 5 == 0,
        )
        for movie in chosen
    }


def test_consumed_items_never_come_back(catalog: dict[int, Candidate]) -> None:
    consumed = {c.item_id for c in sorted(catalog.values(), key=lambda c: -c.score)[:5]}
    ranked = rerank(list(catalog.values()), 10, consumed=consumed)
    assert len(ranked) == 10
    assert not consumed & {r.item_id for r in ranked}
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_business_constraints_are_respected(catalog: dict[int, Candidate]) -> None:
    rules = Constraints(min_rating=5.0, min_runtime=90, max_runtime=140, media_types=("movie",))
    ranked = rerank(list(catalog.values()), 10, constraints=rules)
    assert ranked
    for item in ranked:
        movie = catalog[item.item_id]
        assert movie.rating is not None and movie.rating >= 5.0
        assert movie.runtime is not None and 90 <= movie.runtime <= 140
        assert movie.media_type == "movie"
    assert not Constraints(min_rating=1.0).allows(Candidate(1, 1.0))


def test_genre_cap_limits_any_genre_share(catalog: dict[int, Candidate]) -> None:
    candidates = list(catalog.values())
    plain = rerank(candidates, 10)
    capped = rerank(candidates, 10, diversity="genre_cap", max_genre_share=0.3)

    def top_share(items: list) -> int:  # type: ignore[type-arg]
        return max(Counter(g for r in items for g in catalog[r.item_id].genres).values())

    assert top_share(plain) > 3
    assert top_share(capped) <= 3
    assert len(capped) == 10


def test_mmr_makes_the_list_more_diverse(catalog: dict[int, Candidate]) -> None:
    candidates = list(catalog.values())
    vectors = np.stack([c.vector for c in candidates if c.vector is not None])
    index = {c.item_id: i for i, c in enumerate(candidates)}

    def diversity(items: list) -> float:  # type: ignore[type-arg]
        return intra_list_diversity(np.array([[index[r.item_id] for r in items]]), vectors)

    plain = rerank(candidates, 10)
    diverse = rerank(candidates, 10, diversity="mmr", mmr_lambda=0.5)
    assert diversity(diverse) > diversity(plain)
    assert diverse[0].item_id == plain[0].item_id  # the best item still leads
    assert rerank(candidates, 10, diversity="mmr", mmr_lambda=1.0) == plain


def test_each_item_gets_the_most_specific_true_explanation(catalog: dict[int, Candidate]) -> None:
    alien = catalog[ALIEN]
    assert alien.vector is not None
    profile = PreferenceVector(len(alien.vector))
    thrillers = [c for c in catalog.values() if "Thriller" in c.genres][:4]
    for film in thrillers:  # each watched to the end
        event = PreferenceEvent(film.item_id, 1.0, film.genres, "watch", 1.0)
        profile.update(film.vector if film.vector is not None else alien.vector, 1.0, event)
    history = [HistoryItem(ALIEN, "Alien (1979)", alien.vector, 1.0)]
    explainer = Explainer(history, profile)
    assert explainer.explain(catalog[ALIENS]) == "because you watched Alien (1979)"
    thriller = Candidate(1, 1.0, vector=None, genres=("Thriller",))
    assert explainer.explain(thriller) == "you finish most thrillers"
    assert Explainer().explain(Candidate(2, 1.0, trending=True)) == "popular this week"
    assert Explainer().explain(Candidate(3, 1.0)) == "recommended for you"
    ranked = rerank(list(catalog.values()), 5, explainer=explainer)
    assert all(r.explanation for r in ranked)


def test_a_disliked_history_item_is_never_the_reason(catalog: dict[int, Candidate]) -> None:
    alien = catalog[ALIEN]
    explainer = Explainer([HistoryItem(ALIEN, "Alien (1979)", alien.vector, -1.0)])
    assert "Alien" not in explainer.explain(catalog[ALIENS])


def test_invalid_rerank_parameters_are_refused(catalog: dict[int, Candidate]) -> None:
    candidates = list(catalog.values())
    with pytest.raises(InvalidInput):
        rerank(candidates, 0)
    with pytest.raises(InvalidInput):
        rerank(candidates, 5, diversity="shuffle")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        rerank(candidates, 5, mmr_lambda=1.5)
    with pytest.raises(InvalidInput):
        rerank(candidates, 5, diversity="genre_cap", max_genre_share=0.0)
