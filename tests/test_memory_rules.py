"""The five executable strategies and the causal reranker, on real TMDB 5000 titles."""

from __future__ import annotations

import csv
import json
import math
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metamedia.memory.reranker import CausalReranker
from metamedia.memory.rules import (
    Candidate,
    diversity,
    genre_preference,
    platform_availability,
    rating_alignment,
    session_fit,
)
from metamedia.memory.seeds import SEED_STRATEGIES
from tests.conftest import DATA

PARAMS = {s.rule: s.params for s in SEED_STRATEGIES}


@lru_cache(maxsize=1)
def tmdb_titles() -> tuple[Candidate, ...]:
    """Real titles with runtime, rating and genres, scored by popularity (a stand-in base ranking)."""
    out = []
    with (DATA / "tmdb-5000" / "tmdb_5000_movies.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            runtime = int(float(row["runtime"] or 0))
            genres = [g["name"] for g in json.loads(row["genres"])]
            if runtime <= 0 or not genres or not row["vote_count"] or int(row["vote_count"]) < 50:
                continue
            out.append(
                Candidate(
                    item_id=row["id"],
                    score=math.log1p(float(row["popularity"])),
                    genres=genres,
                    runtime=runtime,
                    vote_average=float(row["vote_average"]),
                    year=int(row["release_date"][:4]),
                    title=row["title"],
                )  # fmt: skip
            )
    return tuple(sorted(out, key=lambda c: -c.score))


def slate(n: int = 40, start: int = 0) -> list[Candidate]:
    return [
        Candidate(
            **{**c.__dict__, "genres": list(c.genres), "reasons": [], "strategy_ids": [], "platforms": []}
        )
        for c in tmdb_titles()[start : start + n]
    ]


def mean_rank(cands: list[Candidate], keep) -> float:  # type: ignore[no-untyped-def]
    ranks = [i for i, c in enumerate(cands) if keep(c)]
    return sum(ranks) / len(ranks)


def test_evening_sessions_get_longer_films_and_lunch_breaks_shorter_ones() -> None:
    cands = slate(60, 200)
    long_film = lambda c: (c.runtime or 0) >= 100  # noqa: E731
    short_film = lambda c: (c.runtime or 0) <= 90  # noqa: E731
    evening = session_fit(cands, {"hour": 20}, {}, PARAMS["session_fit"]).candidates
    lunch = session_fit(cands, {"hour": 12}, {}, PARAMS["session_fit"]).candidates
    assert mean_rank(evening, long_film) < mean_rank(cands, long_film)
    assert mean_rank(lunch, short_film) < mean_rank(cands, short_film)
    assert mean_rank(lunch, long_film) > mean_rank(cands, long_film)
    assert sum(map(short_film, lunch[:10])) > sum(map(short_film, cands[:10]))
    assert any("lunch break" in r for c in lunch[:10] for r in c.reasons)


def test_films_longer_than_the_session_sink_below_those_that_fit() -> None:
    cands = slate(60)
    out = session_fit(cands, {"session_minutes": 100}, {}, PARAMS["session_fit"]).candidates
    fits = [c.runtime is not None and c.runtime <= 110 for c in out]
    assert all(fits[:10]) and not all(fits)
    late = next(c for c in out if c.runtime and c.runtime > 110)
    assert any("longer than your 100-minute session" in r for r in late.reasons)


@settings(max_examples=40, deadline=None)
@given(min_rating=st.floats(min_value=4.0, max_value=8.5), start=st.integers(0, 400))
def test_never_below_the_users_minimum_rating(min_rating: float, start: int) -> None:
    cands = slate(30, start)
    result = rating_alignment(cands, {}, {"min_rating": min_rating}, PARAMS["rating_alignment"])
    assert all(c.vote_average is not None and c.vote_average >= min_rating for c in result.candidates)
    dropped = sum(1 for c in cands if (c.vote_average or 0) < min_rating)
    assert len(result.candidates) == len(cands) - dropped
    if dropped:
        assert f"below your minimum of {min_rating:.1f}" in result.notes[0]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(5, 40), start=st.integers(0, 400), window=st.integers(5, 20))
def test_diversity_keeps_the_top_three_and_injects_20_to_30_percent(n: int, start: int, window: int) -> None:
    cands = slate(n, start)
    params = {**PARAMS["diversity"], "window": window}
    out = diversity(cands, {}, {}, params).candidates
    assert [c.item_id for c in out[:3]] == [c.item_id for c in cands[:3]]
    assert sorted(c.item_id for c in out) == sorted(c.item_id for c in cands)
    shown = min(window, n)
    injected = [c for c in out[:shown] if c.features.get("diversity") == 1.0]
    novel_available = any(set(c.genres) - {g for h in cands[:3] for g in h.genres} for c in cands[3:])
    if novel_available and shown > 4:
        assert 1 <= len(injected) <= math.floor(0.3 * shown)
    head_genres = {g for c in out[:3] for g in c.genres}
    for pick in injected:
        assert set(pick.genres) - head_genres, "a diversity pick must bring a genre the top picks lack"


def test_ten_slot_window_gets_two_or_three_diverse_items() -> None:
    out = diversity(slate(40), {}, {}, PARAMS["diversity"]).candidates
    injected = [c for c in out[:10] if c.features.get("diversity") == 1.0]
    assert 2 <= len(injected) <= 3
    assert all(any(r.startswith("for variety") for r in c.reasons) for c in injected)


def genre_counts(shown: int, skipped: int, completed: int) -> dict[str, float]:
    return {
        "shown": shown,
        "skipped": skipped,
        "completed": completed,
        "completion_sum": 0.95 * completed + 0.02 * skipped,
    }


def test_genre_preference_needs_five_interactions_before_acting() -> None:
    cands = slate(80)
    horror_count = sum("Horror" in c.genres for c in cands) or 0
    four = {"genre_stats": {"Horror": genre_counts(4, 4, 0)}}
    five = {"genre_stats": {"Horror": genre_counts(5, 5, 0)}}
    assert (
        sum(
            "Horror" in c.genres
            for c in genre_preference(cands, {}, four, PARAMS["genre_preference"]).candidates
        )
        == horror_count
    )
    result = genre_preference(cands, {}, five, PARAMS["genre_preference"])
    assert not any("Horror" in c.genres for c in result.candidates)
    if horror_count:
        assert result.notes == [f"avoiding Horror: you skipped 5 of 5 horror picks ({horror_count} dropped)"]


def test_a_liked_genre_moves_up() -> None:
    cands = slate(40)
    liked = {"genre_stats": {"Comedy": genre_counts(8, 0, 8)}}
    out = genre_preference(cands, {}, liked, PARAMS["genre_preference"]).candidates
    before = [i for i, c in enumerate(cands) if "Comedy" in c.genres]
    after = [i for i, c in enumerate(out) if "Comedy" in c.genres]
    assert before and sum(after) < sum(before)
    assert any("finished 8 of 8 comedy picks" in r for c in out for r in c.reasons)


def test_platform_availability_drops_unwatchable_titles_but_keeps_unknown_ones() -> None:
    cands = slate(9)
    for i, c in enumerate(cands):
        c.platforms = [["Netflix"], ["Hulu"], []][i % 3]
    out = platform_availability(cands, {}, {"platforms": ["netflix"]}, {})
    assert {tuple(c.platforms) for c in out.candidates} == {("Netflix",), ()}
    assert len(out.candidates) == 6 and "dropped 3 titles" in out.notes[0]


def test_rules_do_not_mutate_their_input() -> None:
    cands = slate(20)
    snapshot = [(c.item_id, c.score, list(c.reasons), dict(c.features)) for c in cands]
    for rule, stats in [
        (session_fit, {}),
        (rating_alignment, {"min_rating": 7.0, "preferred_rating": 7.0}),
        (diversity, {}),
        (genre_preference, {"genre_stats": {"Action": genre_counts(6, 6, 0)}}),
    ]:
        rule(cands, {"hour": 20, "session_minutes": 90}, stats, PARAMS.get(rule.__name__, {}))
    assert [(c.item_id, c.score, c.reasons, c.features) for c in cands] == snapshot


def test_causal_reranker_promotes_items_with_strong_causal_features() -> None:
    cands = slate(3)
    cands[2].features = {"runtime_fit": 1.0, "genre_match": 1.0}
    reranker = CausalReranker({"runtime_fit": 0.14, "genre_match": 0.11, "recency": 0.03})
    spread = cands[0].score - cands[2].score
    out = reranker.rerank(cands)
    assert reranker.score(cands[2].features) == pytest.approx(0.25)
    assert (out[0].item_id == cands[2].item_id) == (spread < 0.25)
    promoted = next(c for c in out if c.item_id == cands[2].item_id)
    assert "causal lift +0.14 from runtime_fit" in promoted.reasons
