"""PreferenceVector (online taste learning) and signal strengths, on real MovieLens movies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metamedia.errors import DimensionMismatch, InvalidInput
from metamedia.evaluation.data import fallback_item_vectors, load_movie_genres_and_years
from metamedia.recommend.preference import PreferenceEvent, PreferenceVector
from metamedia.recommend.signals import (
    Signal,
    SignalKind,
    completion_strength,
    rating_strength,
    rating_strengths,
    signal_strength,
)
from tests.conftest import MOVIELENS

TOY_STORY, ALIEN, ALIENS, NOTTING_HILL, BLADE_RUNNER = 1, 1214, 1200, 2671, 541


Movies = tuple[dict[int, np.ndarray], dict[int, list[str]]]


@pytest.fixture(scope="module")
def movies() -> Movies:
    """Fallback content vectors and canonical genres of every real MovieLens movie."""
    genres, years = load_movie_genres_and_years(MOVIELENS / "movies.csv")
    return fallback_item_vectors(genres, years), genres


def cosine(profile: PreferenceVector, vector: np.ndarray) -> float:
    return float(profile.similarity(vector[None, :])[0])


def test_a_liked_item_pulls_the_profile_toward_it(movies: Movies) -> None:
    vectors, _ = movies
    profile = PreferenceVector(len(vectors[ALIEN]))
    profile.update(vectors[NOTTING_HILL], 1.0)
    before = cosine(profile, vectors[ALIEN])
    profile.update(vectors[ALIEN], 0.8)
    assert cosine(profile, vectors[ALIEN]) > before
    # Similar films move with it: Aliens shares Alien's genres.
    assert cosine(profile, vectors[ALIENS]) > before


def test_a_skip_or_dislike_pushes_the_profile_away(movies: Movies) -> None:
    vectors, _ = movies
    profile = PreferenceVector(len(vectors[ALIEN]))
    profile.update(vectors[BLADE_RUNNER], 1.0)
    before = cosine(profile, vectors[ALIEN])
    profile.update(vectors[ALIEN], signal_strength(Signal(SignalKind.SKIP)))
    after_skip = cosine(profile, vectors[ALIEN])
    profile.update(vectors[ALIEN], signal_strength(Signal(SignalKind.DISLIKE)))
    assert after_skip < before
    assert cosine(profile, vectors[ALIEN]) < after_skip


def test_the_learning_rate_settles_as_evidence_grows(movies: Movies) -> None:
    vectors, _ = movies
    profile = PreferenceVector(len(vectors[ALIEN]), min_rate=0.05)
    rates = []
    for movie in [TOY_STORY, ALIEN, ALIENS, NOTTING_HILL, BLADE_RUNNER] * 10:
        rates.append(profile.learning_rate(1.0))
        profile.update(vectors[movie], 1.0)
    assert rates[0] == 1.0
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:], strict=False))
    assert rates[-1] == pytest.approx(0.05)
    # A weak signal moves the profile less than a strong one at the same evidence.
    assert profile.learning_rate(0.1) < profile.learning_rate(1.0)


def test_confidence_grows_with_evidence_and_stays_below_one(movies: Movies) -> None:
    vectors, _ = movies
    profile = PreferenceVector(len(vectors[ALIEN]))
    assert profile.confidence == 0.0
    seen = []
    for movie in [TOY_STORY, ALIEN, ALIENS] * 5:
        profile.update(vectors[movie], 0.6)
        seen.append(profile.confidence)
    assert seen == sorted(seen) and 0.0 < seen[-1] < 1.0


def test_unit_strength_updates_without_floor_are_the_running_mean(movies: Movies) -> None:
    vectors, _ = movies
    films = [TOY_STORY, ALIEN, NOTTING_HILL]
    profile = PreferenceVector(len(vectors[ALIEN]), min_rate=1e-9)
    for movie in films:
        profile.update(vectors[movie], 1.0)
    np.testing.assert_allclose(profile.vector, np.mean([vectors[m] for m in films], axis=0), atol=1e-6)


def test_genre_affinities_and_finish_rates_follow_the_signals(movies: Movies) -> None:
    vectors, genres = movies
    profile = PreferenceVector(len(vectors[ALIEN]))
    for movie, completion in [(ALIEN, 1.0), (ALIENS, 0.95), (BLADE_RUNNER, 0.3)]:
        strength = completion_strength(completion)
        event = PreferenceEvent(movie, strength, tuple(genres[movie]), "watch", completion)
        profile.update(vectors[movie], strength, event)
    profile.update(
        vectors[NOTTING_HILL], -1.0, PreferenceEvent(NOTTING_HILL, -1.0, tuple(genres[NOTTING_HILL]))
    )
    assert profile.genre_affinity["Horror"] > 0.5
    assert profile.genre_affinity["Romance"] < 0.0
    assert profile.genre_finish_rate("Horror") == 1.0
    assert profile.genre_finish_rate("Science Fiction") == pytest.approx(2 / 3)
    assert profile.genre_watch_count("Science Fiction") == 3
    assert profile.genre_finish_rate("Romance") is None


def test_a_profile_rebuilds_exactly_from_its_history(movies: Movies) -> None:
    vectors, genres = movies
    profile = PreferenceVector(len(vectors[ALIEN]), min_rate=0.1)
    for movie, strength in [(ALIEN, 1.0), (TOY_STORY, -0.4), (ALIENS, 0.56), (NOTTING_HILL, 0.05)]:
        profile.update(vectors[movie], strength, PreferenceEvent(movie, strength, tuple(genres[movie])))
    rebuilt = PreferenceVector.rebuild(profile.dim, profile.history, vectors.__getitem__, min_rate=0.1)
    np.testing.assert_array_equal(rebuilt.vector, profile.vector)
    assert rebuilt.genre_affinity == profile.genre_affinity
    assert rebuilt.evidence == profile.evidence
    assert len(rebuilt.history) == 4


def test_bad_updates_are_refused(movies: Movies) -> None:
    vectors, _ = movies
    profile = PreferenceVector(len(vectors[ALIEN]))
    with pytest.raises(DimensionMismatch):
        profile.update(np.ones(3, dtype=np.float32), 1.0)
    with pytest.raises(InvalidInput):
        profile.update(vectors[ALIEN], 1.5)
    with pytest.raises(InvalidInput):
        profile.update(vectors[ALIEN], 0.5, PreferenceEvent(ALIEN, 0.9))
    with pytest.raises(InvalidInput):
        PreferenceVector(0)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    strengths=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=8),
    liked=st.floats(0.01, 1.0),
)
def test_any_positive_update_never_lowers_the_cosine_to_that_item(
    seed: int, strengths: list[float], liked: float
) -> None:
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(len(strengths) + 1, 16)).astype(np.float32)
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    profile = PreferenceVector(16)
    for vector, strength in zip(items[1:], strengths, strict=True):
        profile.update(vector, strength)
    before = float(profile.similarity(items[:1])[0])
    profile.update(items[0], liked)
    assert float(profile.similarity(items[:1])[0]) >= before - 1e-5


def test_rating_strength_spans_minus_one_to_one_on_both_scales() -> None:
    assert rating_strength(0.5) == -1.0 and rating_strength(5.0) == 1.0
    assert rating_strength(1.0, "ten") == -1.0 and rating_strength(10.0, "ten") == 1.0
    assert rating_strength(4.0) > 0 > rating_strength(2.0)
    with pytest.raises(InvalidInput):
        rating_strength(7.0)
    with pytest.raises(InvalidInput):
        rating_strength(3.0, "hundred")


@given(st.lists(st.floats(0.5, 5.0), min_size=2, max_size=20))
def test_rating_strengths_are_monotone_and_match_the_scalar_mapping(ratings: list[float]) -> None:
    strengths = rating_strengths(np.array(ratings))
    np.testing.assert_allclose(strengths, [rating_strength(r) for r in ratings], atol=1e-6)
    order = np.argsort(ratings, kind="stable")
    assert (np.diff(strengths[order]) >= -1e-6).all()


def test_each_signal_kind_has_the_expected_direction() -> None:
    positive = [
        SignalKind.VIEW,
        SignalKind.CLICK,
        SignalKind.REWATCH,
        SignalKind.LIKE,
        SignalKind.ADD_TO_LIST,
    ]
    assert all(signal_strength(Signal(kind)) > 0 for kind in positive)
    assert signal_strength(Signal(SignalKind.DISLIKE)) == -1.0
    assert signal_strength(Signal(SignalKind.SKIP)) < 0
    assert signal_strength(Signal(SignalKind.REWATCH)) > signal_strength(Signal(SignalKind.CLICK))
    assert signal_strength(Signal(SignalKind.RATING, value=8.0, scale="ten")) > 0


def test_watch_strength_comes_from_completion_or_watch_time() -> None:
    full = signal_strength(Signal(SignalKind.WATCH, completion=1.0))
    abandoned = signal_strength(Signal(SignalKind.WATCH, watch_seconds=60, runtime_seconds=6000))
    assert full == 1.0 and abandoned < 0
    assert signal_strength(Signal(SignalKind.WATCH, watch_seconds=9000, runtime_seconds=6000)) == 1.0
    with pytest.raises(InvalidInput):
        signal_strength(Signal(SignalKind.WATCH))
    with pytest.raises(InvalidInput):
        signal_strength(Signal(SignalKind.RATING))
    with pytest.raises(InvalidInput):
        completion_strength(1.2)
