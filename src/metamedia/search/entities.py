"""Titles in queries: how closely a query (or a "like X" phrase) names a catalog item's title.

Matching is on normalised titles (case, accents and punctuation ignored, a leading article optional),
exact first, then fuzzy with difflib's ratio, which tolerates a typo or a missing word.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher

from ..models import MediaItem

FUZZY_TITLE = 0.88  # similarity at or above which a query is taken to name the title
# difflib's ratio punishes one typo in a short title hard ("matirx" vs "matrix" is 0.83): from six
# letters on, a ratio of 0.8 counts, scaled up to the common threshold.
SHORT_TITLE = 6
SHORT_TITLE_RATIO = 0.8
_ARTICLE = re.compile(r"^(?:the|a|an|le|la|les|el|il|der|die|das)\s+")
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6"}


def normalise_title(text: str) -> str:
    """Lower case, no accents or punctuation, single spaces, "&" as "and", roman sequel numbers as digits."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c)).replace("&", " and ")
    words = re.sub(r"[^\w\s]|_", " ", folded).split()
    return " ".join(_ROMAN.get(w, w) for w in words)


def _bare(title: str) -> str:
    return _ARTICLE.sub("", title)


def title_similarity(query: str, item: MediaItem) -> float:
    """1.0 when the query is the item's title (or original title); difflib ratio below that."""
    q = normalise_title(query)
    if not q:
        return 0.0
    best = 0.0
    for title in (item.title, item.original_title):
        if not title:
            continue
        t = normalise_title(title)
        if q == t or _bare(q) == _bare(t):
            return 1.0
        a, b = _bare(q), _bare(t)
        ratio = SequenceMatcher(None, a, b, autojunk=False).ratio()
        if min(len(a), len(b)) >= SHORT_TITLE and SHORT_TITLE_RATIO <= ratio < FUZZY_TITLE:
            ratio = FUZZY_TITLE  # one typo in a title of six letters or more still names it
        best = max(best, ratio)
    return best


def title_coverage(query_terms: list[str], item: MediaItem) -> float:
    """Share of the query's words that appear in the title, times the share of title words asked for."""
    title_words = set(normalise_title(item.title).split())
    if not query_terms or not title_words:
        return 0.0
    terms = [normalise_title(t) for t in query_terms]
    hit = sum(1 for t in terms if t in title_words)
    return (hit / len(terms)) * (hit / len(title_words))
