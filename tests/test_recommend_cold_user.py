"""A newcomer's first ratings on the served path: the recent-likes prior of issue 16's cold users.

A real engine (150 real TMDB movies, the real MovieLens ratings of them, dated 1996-2018) where a
title few people ever liked is liked today by a crowd of new users. A newcomer with two ratings is
offered it through ``RecommendService.recommend`` (the ``fused`` model ``auto`` serves); the same
model without the recent-likes prior, fitted on the very same interactions, is not; and a regular
with a long history is not either (the prior is for histories of 1-5 items).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from metamedia.engine import Engine
from metamedia.recommend.models import strength_row
from metamedia.recommend.serving import LIKED_CONFIDENCE, SERVING, FusedRecommender
from metamedia.settings import Settings
from tests.conftest import MOVIELENS, TMDB_5000, write_csv_slice

FRESH_FANS = 20


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Engine]:
    base = tmp_path_factory.mktemp("cold-user")
    eng = Engine(Settings(data_dir=base / "data"), embedder=embedder)
    eng.ingest([write_csv_slice(TMDB_5000, base / "slice.csv", 150)])
    eng.recs.import_ratings(MOVIELENS / "ratings.csv", MOVIELENS / "links.csv")
    eng.recs.refresh()
    yield eng
    eng.close()


def liked_counts(engine: Engine) -> tuple[np.ndarray, np.ndarray]:
    """(catalog item ids, how many users liked each) in the fitted interactions."""
    fitted = engine.recs.models.fitted()
    liked = np.asarray((fitted.matrix >= np.float32(LIKED_CONFIDENCE)).sum(axis=0)).ravel()
    return np.asarray(fitted.catalog.item_ids), liked


def served(engine: Engine, user: str) -> list[int]:
    return [row["id"] for row in engine.recs.recommend(user, 10, algorithm="fused")["results"]]


def test_a_title_liked_lately_reaches_a_newcomer_and_not_a_regular(engine: Engine) -> None:
    ids, liked = liked_counts(engine)
    by_likes = np.argsort(-liked, kind="stable")
    mainstream = [int(ids[j]) for j in by_likes[:2]]
    rare = np.flatnonzero((liked >= 1) & (liked <= 3))
    sleeper = int(ids[rare[0]])  # liked by 1-3 MovieLens users, ever
    fitted = engine.recs.models.fitted()
    rated = np.diff(fitted.matrix.indptr)
    column = fitted.catalog.position[sleeper]
    regular = max(  # the MovieLens user with the longest history who never rated the sleeper
        (u for u, row in fitted.user_rows.items() if fitted.matrix[row, column] == 0),
        key=lambda u: (rated[fitted.user_rows[u]], u),
    )
    assert rated[fitted.user_rows[regular]] > 5
    for item in mainstream:
        engine.recs.record_interaction("newcomer", item, "like")
    assert sleeper not in served(engine, "newcomer")  # before: a title nobody liked lately

    for fan in range(FRESH_FANS):  # today a crowd likes it
        engine.recs.record_interaction(f"fresh-fan-{fan}", sleeper, "like")
    engine.recs.refresh()
    assert sleeper in served(engine, "newcomer")
    assert sleeper not in served(engine, regular)  # a long history gets no prior

    # It is the recent-likes prior that brings it: the same model without it, fitted on the same
    # interactions (the fresh likes counted in its all-time popularity too), does not offer it.
    fitted = engine.recs.models.fitted()
    history = strength_row(
        [(item, strength, when) for item, strength, when, *_ in engine.recs._events("newcomer")],
        fitted.catalog,
    )
    without = FusedRecommender(replace(SERVING, recent_popularity_blend={})).fit(fitted.matrix)
    plain = without.score(np.zeros(1, np.int64), history=history)[0]
    with_prior = fitted.models["fused"].score(np.zeros(1, np.int64), history=history)[0]
    assert int((plain > plain[column]).sum()) >= 10
    assert int((with_prior > with_prior[column]).sum()) < 10


def test_a_single_fresh_like_on_a_stale_catalog_does_not_take_over(engine: Engine) -> None:
    """200 pseudo-likes spread like the earlier likes fill a quiet spell: one like today is no trend."""
    ids, liked = liked_counts(engine)
    rare = np.flatnonzero((liked >= 1) & (liked <= 3))
    assert len(rare) >= 2
    lone = int(ids[rare[-1]])
    mainstream = [int(ids[j]) for j in np.argsort(-liked, kind="stable")[2:4]]
    for item in mainstream:
        engine.recs.record_interaction("second-newcomer", item, "like")
    engine.recs.record_interaction("lone-fan", lone, "like")
    engine.recs.refresh()
    assert lone not in served(engine, "second-newcomer")
