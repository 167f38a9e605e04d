"""The hybrid content vector: text embedding + genre multi-hot + mood features + metadata.

Layout (see docs/hybrid-vectors.md), every block L2-normalised then weighted, the whole vector
L2-normalised again so cosine similarity is a weighted mix of per-block similarities:

    [0, 384)    text     all-MiniLM-L6-v2 of "title. tagline. overview. keywords"
    [384, 403)  genre    multi-hot over vocab.GENRES (19)
    [403, 412)  mood     soft mood scores over vocab.MOODS (9), derived from genres and keywords
    [412, 420)  meta     centred year, runtime, rating, log votes, log popularity, is_movie, is_tv, has_overview
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from ..models import MediaItem
from ..vocab import GENRES, MOODS
from .model import DIM as TEXT_DIM

GENRE_DIM = len(GENRES)
MOOD_DIM = len(MOODS)
META_DIM = 8
HYBRID_DIM = TEXT_DIM + GENRE_DIM + MOOD_DIM + META_DIM

TEXT_SLICE = slice(0, TEXT_DIM)
GENRE_SLICE = slice(TEXT_DIM, TEXT_DIM + GENRE_DIM)
MOOD_SLICE = slice(GENRE_SLICE.stop, GENRE_SLICE.stop + MOOD_DIM)
META_SLICE = slice(MOOD_SLICE.stop, HYBRID_DIM)

_GENRE_INDEX = {g: i for i, g in enumerate(GENRES)}
_MOOD_INDEX = {m: i for i, m in enumerate(MOODS)}

# How strongly each genre suggests each mood (0..1). Hand-set, documented, small.
GENRE_MOODS: dict[str, dict[str, float]] = {
    "Action": {"exciting": 1.0, "intense": 0.7},
    "Adventure": {"exciting": 0.8, "happy": 0.3},
    "Animation": {"happy": 0.7, "feel-good": 0.7, "relaxing": 0.3},
    "Comedy": {"happy": 1.0, "feel-good": 0.8, "relaxing": 0.4},
    "Crime": {"dark": 0.7, "suspenseful": 0.6, "intense": 0.4},
    "Documentary": {"calm": 0.7, "relaxing": 0.3},
    "Drama": {"sad": 0.5, "calm": 0.3, "intense": 0.2},
    "Family": {"feel-good": 1.0, "happy": 0.8, "relaxing": 0.4},
    "Fantasy": {"exciting": 0.5, "happy": 0.3},
    "History": {"calm": 0.3, "sad": 0.3, "intense": 0.3},
    "Horror": {"dark": 1.0, "intense": 0.8, "suspenseful": 0.8},
    "Music": {"happy": 0.7, "relaxing": 0.6, "feel-good": 0.6},
    "Mystery": {"suspenseful": 1.0, "dark": 0.4},
    "Romance": {"feel-good": 0.8, "happy": 0.6, "sad": 0.2},
    "Science Fiction": {"exciting": 0.7, "intense": 0.3},
    "TV Movie": {"relaxing": 0.4},
    "Thriller": {"suspenseful": 1.0, "intense": 0.9, "dark": 0.4},
    "War": {"intense": 1.0, "sad": 0.7, "dark": 0.6},
    "Western": {"exciting": 0.5, "intense": 0.3},
}

# Keyword cues that add to a mood (matched as whole keywords or keyword substrings).
KEYWORD_MOODS: dict[str, dict[str, float]] = {
    "murder": {"dark": 0.5, "suspenseful": 0.4},
    "serial killer": {"dark": 0.8, "intense": 0.5},
    "death": {"sad": 0.4, "dark": 0.3},
    "friendship": {"feel-good": 0.5, "happy": 0.3},
    "love": {"feel-good": 0.4},
    "revenge": {"intense": 0.5, "dark": 0.3},
    "dystopia": {"dark": 0.6},
    "survival": {"intense": 0.6, "suspenseful": 0.3},
    "suicide": {"sad": 0.7, "dark": 0.5},
    "chase": {"exciting": 0.5},
    "explosion": {"exciting": 0.5},
    "christmas": {"feel-good": 0.6, "happy": 0.4},
    "nature": {"calm": 0.5, "relaxing": 0.4},
    "duringcreditsstinger": {},
}


@dataclass(frozen=True)
class HybridWeights:
    text: float = 1.0
    genre: float = 0.45
    mood: float = 0.25
    meta: float = 0.15


def item_text(item: MediaItem) -> str:
    """The text embedded for an item: title, tagline, overview and a few keywords."""
    parts = [item.title]
    if item.tagline:
        parts.append(item.tagline)
    if item.overview:
        parts.append(item.overview)
    if item.keywords:
        parts.append("Keywords: " + ", ".join(item.keywords[:12]))
    if not item.overview and item.genres:
        parts.append("Genres: " + ", ".join(item.genres))
    return ". ".join(p.strip().rstrip(".") for p in parts if p and p.strip())


def text_hash(model_name: str, text: str) -> str:
    """Content hash that keys the embedding cache: same model and text -> same vector."""
    return hashlib.sha256(f"{model_name}\x00{text}".encode()).hexdigest()


def genre_block(genres: list[str]) -> np.ndarray:
    vec = np.zeros(GENRE_DIM, dtype=np.float32)
    for g in genres:
        idx = _GENRE_INDEX.get(g)
        if idx is not None:
            vec[idx] = 1.0
    return vec


def item_moods(genres: list[str], keywords: list[str]) -> np.ndarray:
    """Soft mood scores of an item from its genres and keywords (not normalised)."""
    vec = np.zeros(MOOD_DIM, dtype=np.float32)
    for g in genres:
        for mood, w in GENRE_MOODS.get(g, {}).items():
            vec[_MOOD_INDEX[mood]] += w
    for kw in keywords:
        for cue, moods in KEYWORD_MOODS.items():
            if cue in kw:
                for mood, w in moods.items():
                    vec[_MOOD_INDEX[mood]] += w
    return vec


def mood_block(moods: list[str]) -> np.ndarray:
    vec = np.zeros(MOOD_DIM, dtype=np.float32)
    for m in moods:
        idx = _MOOD_INDEX.get(m)
        if idx is not None:
            vec[idx] = 1.0
    return vec


def _clip(x: float) -> float:
    return max(-1.0, min(1.0, x))


def meta_block(
    *,
    year: float | None,
    runtime: float | None,
    rating: float | None,
    votes: float | None,
    popularity: float | None,
    media_type: str | None,
    has_overview: bool | None,
) -> np.ndarray:
    """Centred metadata features in [-1, 1]; unknown values contribute 0."""
    vec = np.zeros(META_DIM, dtype=np.float32)
    if year:
        vec[0] = _clip((year - 1995.0) / 25.0)
    if runtime:
        vec[1] = _clip((runtime - 105.0) / 45.0)
    if rating:
        vec[2] = _clip((rating - 6.3) / 2.0)
    if votes:
        vec[3] = _clip((math.log1p(votes) - 5.5) / 3.0)
    if popularity:
        vec[4] = _clip((math.log1p(popularity) - 2.0) / 2.0)
    if media_type == "movie":
        vec[5] = 0.5
    elif media_type == "tv":
        vec[6] = 0.5
    if has_overview is not None:
        vec[7] = 0.3 if has_overview else -0.3
    return vec


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def combine(
    text: np.ndarray | None,
    genre: np.ndarray,
    mood: np.ndarray,
    meta: np.ndarray,
    weights: HybridWeights,
) -> np.ndarray:
    """Assemble blocks into one unit-length hybrid vector."""
    out = np.zeros(HYBRID_DIM, dtype=np.float32)
    if text is not None:
        out[TEXT_SLICE] = weights.text * _unit(text.astype(np.float32))
    out[GENRE_SLICE] = weights.genre * _unit(genre)
    out[MOOD_SLICE] = weights.mood * _unit(mood)
    out[META_SLICE] = weights.meta * _unit(meta)
    return _unit(out).astype(np.float32)


def item_vector(item: MediaItem, text_vec: np.ndarray, weights: HybridWeights) -> np.ndarray:
    """Hybrid content vector of a catalog item."""
    return combine(
        text_vec,
        genre_block(item.genres),
        item_moods(item.genres, item.keywords),
        meta_block(
            year=item.year,
            runtime=item.runtime,
            rating=item.vote_average if item.vote_count else None,
            votes=item.vote_count,
            popularity=item.popularity,
            media_type=item.media_type,
            has_overview=bool(item.overview),
        ),
        weights,
    )
