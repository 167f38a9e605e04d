"""Human-readable reasons attached to every search result."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np

from ..embed.hybrid import TEXT_SLICE, item_moods
from ..models import MediaItem
from ..vocab import MOODS

LANGUAGE_NAMES = {
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "ja": "Japanese",
    "es": "Spanish",
    "zh": "Mandarin",
    "cn": "Cantonese",
    "ko": "Korean",
    "ru": "Russian",
    "sv": "Swedish",
    "da": "Danish",
    "no": "Norwegian",
    "fi": "Finnish",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "tr": "Turkish",
    "th": "Thai",
    "hi": "Hindi",
    "ta": "Tamil",
    "te": "Telugu",
    "ml": "Malayalam",
    "bn": "Bengali",
    "fa": "Persian",
    "el": "Greek",
    "cs": "Czech",
    "hu": "Hungarian",
    "ar": "Arabic",
    "he": "Hebrew",
    "en": "English",
}
PLOT_SIMILAR = 0.35  # cosine between query text and item text above which we call the plot similar
HIGHLY_RATED = 7.5
MIN_VOTES_FOR_RATING = 100


def text_similarity(query_text_vec: np.ndarray | None, item_vec: np.ndarray) -> float:
    """Cosine between the query's text embedding and the text block of an item's hybrid vector."""
    if query_text_vec is None:
        return 0.0
    block = item_vec[TEXT_SLICE]
    norm = float(np.linalg.norm(block))
    return float(block @ query_text_vec / norm) if norm > 0 else 0.0


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A crude shared stem so "aliens" finds "alien" and "robbery" finds "robberies"; used only to
    say which query words an item contains, never to rank."""
    word = word.casefold()
    for suffix in ("ies", "es", "s", "ing", "ed", "y"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def matched_words(terms: list[str], text: str) -> list[str]:
    """The query words that occur in `text` as words (same stem), in query order."""
    if not terms or not text:
        return []
    # A word's stem is a prefix of the word, case-folded: a stem the folded text does not contain
    # cannot match, and most texts are ruled out without splitting them into words.
    folded = text.casefold()
    wanted = [t for t in terms if _stem(t) in folded]
    if not wanted:
        return []
    stems = _stems(text)
    return [t for t in wanted if _stem(t) in stems]


def _may_match(terms: list[str], texts: list[str]) -> bool:
    """False when no text can hold a query word: no stem occurs in them all joined (one test for an
    item's dozen keywords instead of one each; a stem in any one text is in the joined texts)."""
    if not terms or not texts:
        return False
    folded = "\n".join(texts).casefold()
    return any(_stem(t) in folded for t in terms)


@lru_cache(maxsize=16384)
def _stems(text: str) -> frozenset[str]:
    """The stems of a text's words, remembered: the same titles, keywords and overviews come back
    in result after result (stemming them was a third of a new query's CPU)."""
    return frozenset(_stem(w) for w in re.findall(r"[^\W_]+", text))


def mood_strengths(item: MediaItem) -> dict[str, float]:
    """Each mood's strength 0..1 (relative to the item's strongest) from its genres and keywords.
    The dict is shared between calls for the same genres and keywords: read it, never change it."""
    return _mood_strengths(tuple(item.genres), tuple(item.keywords))


@lru_cache(maxsize=16384)
def _mood_strengths(genres: tuple[str, ...], keywords: tuple[str, ...]) -> dict[str, float]:
    raw = item_moods(list(genres), list(keywords))
    top = float(raw.max()) if raw.size else 0.0
    if top <= 0:
        return {}
    return {m: float(raw[i] / top) for i, m in enumerate(MOODS) if raw[i] > 0}


def search_reasons(
    item: MediaItem,
    *,
    text_sim: float,
    parsed: Any,
    explicit_genres: list[str],
    filters: dict[str, Any],
    trend: float,
    title_match: bool = False,
    terms: list[str] | None = None,
) -> list[str]:
    """Why an item is in the results; each reason is checked against the item itself."""
    reasons: list[str] = []
    if title_match:
        reasons.append("title matches your query")
    else:
        in_title = matched_words(terms or [], item.title)
        if in_title:
            reasons.append("title mentions " + ", ".join(in_title))
    terms = terms or []
    makers = [c for c in item.companies if matched_words(terms, c)][:2] if _may_match(terms, item.companies) else []
    if makers:
        reasons.append("made by " + "; ".join(makers))
    if item.collection and not title_match and matched_words(terms or [], item.collection):
        reasons.append(f"part of the {item.collection}")
    in_keywords = (
        [kw for kw in item.keywords if matched_words(terms, kw)][:3] if _may_match(terms, item.keywords) else []
    )
    if in_keywords:
        reasons.append("tagged " + ", ".join(in_keywords))
    in_overview = matched_words(terms or [], item.overview or "")
    if in_overview and not in_keywords:
        reasons.append("plot mentions " + ", ".join(in_overview[:3]))
    for g in parsed.genres:
        if g in item.genres:
            reasons.append(f"matches genre {g}")
    for g in explicit_genres:
        if g in item.genres and f"matches genre {g}" not in reasons:
            reasons.append(f"matches genre {g}")
    if item.overview and text_sim >= PLOT_SIMILAR:  # no overview, no plot to be similar
        reasons.append("plot similar to your query" + (" (strong match)" if text_sim >= 0.5 else ""))
    moods = mood_strengths(item)
    for m in parsed.moods:
        if moods.get(m, 0.0) >= 0.5:
            reasons.append(f"{m} mood")
    languages, countries = getattr(parsed, "languages", []), getattr(parsed, "countries", [])
    if item.language and item.language in languages:
        reasons.append(f"original language {LANGUAGE_NAMES.get(item.language, item.language)}")
    elif made_in := [c for c in item.countries if c in countries]:
        reasons.append("made in " + ", ".join(made_in))
    if (filters.get("year_min") or filters.get("year_max")) and item.year:
        reasons.append(f"released {item.year}, within your years")
    if filters.get("runtime_max") and item.runtime:
        reasons.append(f"{item.runtime} min, fits your time")
    if (
        item.vote_average
        and item.vote_count
        and item.vote_average >= HIGHLY_RATED
        and item.vote_count >= MIN_VOTES_FOR_RATING
    ):
        reasons.append(f"highly rated ({item.vote_average:.1f}/10 from {item.vote_count:,} votes)")
    elif filters.get("rating_min") and item.vote_average:
        reasons.append(f"rated {item.vote_average:.1f}/10")
    if trend >= 0.6:
        reasons.append("popular and recent")
    if not reasons:
        reasons.append("close to your query in overall profile")
    return reasons


def similar_reasons(source: MediaItem, item: MediaItem, text_sim: float) -> list[str]:
    reasons: list[str] = []
    shared = [g for g in item.genres if g in source.genres]
    if shared:
        reasons.append("shares genres " + ", ".join(shared))
    if text_sim >= 0.45:
        reasons.append(f"plot similar to {source.title}")
    shared_kw = [k for k in item.keywords if k in source.keywords][:3]
    if shared_kw:
        reasons.append("also about " + ", ".join(shared_kw))
    if source.year and item.year and abs(source.year - item.year) <= 5:
        reasons.append(f"same era ({item.year})")
    if not reasons:
        reasons.append(f"close to {source.title} in overall profile")
    return reasons
