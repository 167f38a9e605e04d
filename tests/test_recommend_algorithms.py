"""Every recommender on real MovieLens ratings (the first 100 users): valid, unseen, ranked output."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from metamedia.errors import InvalidInput
from metamedia.evaluation.data import fallback_item_vectors, load_movie_genres_and_years, load_ratings
from metamedia.evaluation.split import interaction_matrix
from metamedia.recommend import (
    ALSRecommender,
    ContentRecommender,
    EASERecommender,
    GraphFilterRecommender,
    HybridRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    PreferenceRecommender,
    Recommender,
    reciprocal_rank_fusion,
    top_k,
    weighted_fusion,
)
from metamedia.recommend.signals import rating_strengths
from tests.conftest import MOVIELENS

DAY = 86_400.0


@dataclass
class RatingsSlice:
    binary: sp.csr_matrix
    strength: sp.csr_matrix
    timestamps: sp.csr_matrix
    vectors: np.ndarray
    genres: list[tuple[str, ...]]


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> RatingsSlice:
    """The real ratings of MovieLens users 1-100, with fallback content vectors per movie."""
    log = load_ratings(MOVIELENS / "ratings.csv", MOVIELENS / "links.csv")
    keep = log.user_ids[log.users] <= 100
    items, columns = np.unique(log.items[keep], return_inverse=True)
    users = log.users[keep]
    shape = (int(users.max()) + 1, len(items))
    genres, years = load_movie_genres_and_years(MOVIELENS / "movies.csv")
    vectors = fallback_item_vectors(genres, years)
    movie_ids = log.item_ids[items]
    return RatingsSlice(
        binary=interaction_matrix(users, columns, np.ones(len(users)), shape),
        strength=interaction_matrix(users, columns, rating_strengths(log.ratings[keep]), shape),
        timestamps=interaction_matrix(users, columns, log.timestamps[keep], shape, dtype=np.float64),
        vectors=np.stack([vectors[int(m)] for m in movie_ids]),
        genres=[tuple(genres.get(int(m), [])) for m in movie_ids],
    )


@pytest.fixture(scope="module")
def fitted(ratings: RatingsSlice) -> Callable[[str], Recommender]:
    """Fit each named model once per module (the items-solver EASE takes seconds)."""
    cache: dict[str, Recommender] = {}

    def get(name: str) -> Recommender:
        if name not in cache:
            cache[name] = _fit(name, ratings)
        return cache[name]

    return get


def _fit(name: str, data: RatingsSlice) -> Recommender:
    factories: dict[str, Callable[[], Recommender]] = {
        "popularity": lambda: PopularityRecommender().fit(data.binary),
        "trending": lambda: PopularityRecommender(30.0).fit(data.binary, timestamps=data.timestamps),
        "trending-per-user": lambda: PopularityRecommender(30.0, per_user_time=True).fit(
            data.binary, timestamps=data.timestamps
        ),
        "item-knn": lambda: ItemKNNRecommender(neighbours=50, shrink=10.0).fit(data.binary),
        "als": lambda: ALSRecommender(factors=16, iterations=5, seed=3).fit(data.binary),
        "ease-items": lambda: EASERecommender(200.0, solver="items").fit(data.binary),
        "ease-users": lambda: EASERecommender(200.0, solver="users").fit(data.binary),
        "gf-cf": lambda: GraphFilterRecommender(alpha=0.3, factors=32).fit(data.binary),
        "content": lambda: ContentRecommender().fit(data.binary, data.vectors),
        "preference": lambda: PreferenceRecommender(genre_weight=0.5, item_genres=data.genres).fit(
            data.strength, data.vectors, timestamps=data.timestamps
        ),
        "hybrid-weighted": lambda: HybridRecommender(
            [(EASERecommender(200.0), 1.0), (PopularityRecommender(30.0), 0.2)]
        ).fit(data.binary, data.vectors, timestamps=data.timestamps),
        "hybrid-rrf": lambda: HybridRecommender(
            [(ItemKNNRecommender(50), 1.0), (ContentRecommender(), 0.5)], method="rrf"
        ).fit(data.binary, data.vectors),
    }
    return factories[name]()


ALL = [
    "popularity", "trending", "trending-per-user", "item-knn", "als", "ease-items", "ease-users",
    "gf-cf", "content", "preference", "hybrid-weighted", "hybrid-rrf",
]  # fmt: skip


@pytest.mark.parametrize("name", ALL)
def test_every_algorithm_recommends_k_unseen_valid_items_to_every_user(
    name: str, ratings: RatingsSlice, fitted: Callable[[str], Recommender]
) -> None:
    model = fitted(name)
    users = np.flatnonzero(np.diff(ratings.binary.indptr))
    indices, scores = model.recommend(users, 10, exclude=ratings.binary)
    assert indices.shape == scores.shape == (len(users), 10)
    assert ((indices >= 0) & (indices < ratings.binary.shape[1])).all()
    for position, user in enumerate(users):
        seen = set(ratings.binary[user].indices)
        assert not seen & set(indices[position]), f"user {user} was recommended an item they rated"
        assert len(set(indices[position])) == 10
    assert (np.diff(scores, axis=1) <= 0).all(), "scores must come best first"


def test_recommendations_are_personal_not_one_list_for_everyone(
    ratings: RatingsSlice, fitted: Callable[[str], Recommender]
) -> None:
    users = np.flatnonzero(np.diff(ratings.binary.indptr))
    indices, _ = fitted("ease-users").recommend(users, 10, exclude=ratings.binary)
    assert len({tuple(row) for row in indices}) > len(users) // 2


def test_popularity_decays_with_age() -> None:
    now = 1_600_000_000.0
    # Item 0: three interactions two years old; item 1: two from yesterday.
    users, items = np.array([0, 1, 2, 3, 4]), np.array([0, 0, 0, 1, 1])
    times = np.array([now - 730 * DAY] * 3 + [now - DAY] * 2)
    binary = interaction_matrix(users, items, np.ones(5), (5, 2))
    stamps = interaction_matrix(users, items, times, (5, 2), dtype=np.float64)
    plain = PopularityRecommender().fit(binary).score(np.array([0]))[0]
    trending = PopularityRecommender(30.0, now=now).fit(binary, timestamps=stamps).score(np.array([0]))[0]
    assert plain[0] > plain[1]
    assert trending[1] > trending[0]
    assert trending[1] == pytest.approx(2 * 0.5 ** (1 / 30), rel=1e-5)


def test_per_user_trending_ignores_what_happened_after_the_users_last_activity() -> None:
    now = 1_600_000_000.0
    # User 0 was last active 100 days ago; item 1 became popular only afterwards.
    users, items = np.array([0, 1, 2, 3]), np.array([0, 1, 1, 1])
    times = np.array([now - 100 * DAY, now, now, now])
    binary = interaction_matrix(users, items, np.ones(4), (4, 2))
    stamps = interaction_matrix(users, items, times, (4, 2), dtype=np.float64)
    model = PopularityRecommender(30.0, per_user_time=True).fit(binary, timestamps=stamps)
    early, late = model.score(np.array([0, 1]))
    assert early[1] == 0.0 and early[0] > 0.0
    assert late[1] > late[0]


def test_decay_without_timestamps_is_refused(ratings: RatingsSlice) -> None:
    with pytest.raises(InvalidInput):
        PopularityRecommender(30.0).fit(ratings.binary)


def test_ease_solvers_agree(ratings: RatingsSlice, fitted: Callable[[str], Recommender]) -> None:
    users = np.arange(0, ratings.binary.shape[0], 7)
    by_items = fitted("ease-items")
    by_users = fitted("ease-users")
    np.testing.assert_allclose(by_users.score(users), by_items.score(users), atol=1e-4)
    history = ratings.strength[users]
    np.testing.assert_allclose(by_users.score(users, history), by_items.score(users, history), atol=1e-4)


def test_ease_gives_no_weight_to_an_item_from_itself(fitted: Callable[[str], Recommender]) -> None:
    model = fitted("ease-items")
    assert isinstance(model, EASERecommender) and model.weights is not None
    assert np.all(np.diag(model.weights) == 0.0)


def test_item_knn_keeps_at_most_k_neighbours_and_never_the_item_itself(ratings: RatingsSlice) -> None:
    model = ItemKNNRecommender(neighbours=20).fit(ratings.binary)
    assert model.similarity is not None
    assert np.diff(model.similarity.tocsc().indptr).max() <= 20
    assert model.similarity.diagonal().max() == 0.0


def test_als_is_reproducible_with_a_seed_and_folds_in_a_history(ratings: RatingsSlice) -> None:
    users = np.arange(5)
    first = _fit("als", ratings).score(users)
    second = _fit("als", ratings)
    np.testing.assert_array_equal(first, second.score(users))
    folded = second.score(users, ratings.binary[users])
    assert folded.shape == first.shape
    # Re-deriving a user's factors from their own row lands close to the fitted factors.
    assert np.corrcoef(folded.ravel(), first.ravel())[0, 1] > 0.9


def test_graph_filter_low_pass_term_changes_the_ranking(ratings: RatingsSlice) -> None:
    users = np.arange(10)
    linear = GraphFilterRecommender(alpha=0.0).fit(ratings.binary).score(users)
    smoothed = GraphFilterRecommender(alpha=0.5, factors=32).fit(ratings.binary).score(users)
    assert not np.allclose(linear, smoothed)


def test_content_can_rank_items_nobody_interacted_with(ratings: RatingsSlice) -> None:
    empty_column = sp.csr_matrix((ratings.binary.shape[0], 1), dtype=np.float32)
    binary = sp.hstack([ratings.binary, empty_column], format="csr")
    vectors = np.vstack([ratings.vectors, ratings.vectors[:1]])
    scores = ContentRecommender().fit(binary, vectors).score(np.array([1]))
    assert scores[0, -1] != 0.0
    assert EASERecommender(200.0).fit(binary).score(np.array([1]))[0, -1] == 0.0


def test_a_folded_in_history_of_the_wrong_shape_is_refused(
    ratings: RatingsSlice, fitted: Callable[[str], Recommender]
) -> None:
    model = fitted("ease-users")
    with pytest.raises(InvalidInput):
        model.score(np.array([0, 1]), ratings.binary[:1])


def test_scoring_before_fit_is_refused() -> None:
    for model in (EASERecommender(), ItemKNNRecommender(), GraphFilterRecommender(), ALSRecommender()):
        with pytest.raises(InvalidInput):
            model.score(np.array([0]))


def test_weighted_fusion_with_a_zero_weight_keeps_the_other_ranking(
    fitted: Callable[[str], Recommender],
) -> None:
    users = np.arange(20)
    ease = fitted("ease-users").score(users)
    popularity = fitted("popularity").score(users)
    fused = weighted_fusion([ease, popularity], [1.0, 0.0])
    np.testing.assert_array_equal(top_k(fused, 10)[0], top_k(ease, 10)[0])
    mixed = weighted_fusion([ease, popularity], [1.0, 5.0])
    assert not np.array_equal(top_k(mixed, 10)[0], top_k(ease, 10)[0])


def test_rank_fusion_puts_an_item_first_in_both_lists_on_top() -> None:
    first = np.array([[3.0, 2.0, 1.0, 0.0]])
    second = np.array([[0.5, 0.1, 0.9, 0.2]])
    fused = reciprocal_rank_fusion([first, first + second], [1.0, 1.0], depth=4)
    assert int(np.argmax(fused[0])) == 0
    assert fused[0, 0] == pytest.approx(2 / 61)


def test_hybrid_applies_the_score_adjuster_hook(ratings: RatingsSlice) -> None:
    def promote_first_item(user_rows: np.ndarray, scores: np.ndarray) -> np.ndarray:
        adjusted = scores.copy()
        adjusted[:, 0] += 1000.0
        return adjusted

    model = HybridRecommender([(PopularityRecommender(), 1.0)], adjuster=promote_first_item).fit(
        ratings.binary
    )
    users = np.array([u for u in range(ratings.binary.shape[0]) if 0 not in ratings.binary[u].indices][:5])
    indices, _ = model.recommend(users, 3, exclude=ratings.binary)
    assert (indices[:, 0] == 0).all()

    broken = HybridRecommender([(PopularityRecommender(), 1.0)], adjuster=lambda rows, s: s[:, :1])
    with pytest.raises(InvalidInput):
        broken.fit(ratings.binary).score(np.array([0]))


def test_top_k_pads_when_fewer_items_can_be_ranked() -> None:
    scores = np.array([[0.5, -np.inf, 0.9]], dtype=np.float32)
    indices, values = top_k(scores, 4)
    assert indices.tolist() == [[2, 0, -1, -1]]
    assert values[0, :2].tolist() == pytest.approx([0.9, 0.5])
    with pytest.raises(InvalidInput):
        top_k(scores, 0)
