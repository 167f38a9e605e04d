"""Titles in queries: how closely a query (or a "like X" phrase) names a catalog item's title.

Matching is on normalised titles (case, accents and punctuation ignored, a leading article optional),
exact first, then fuzzy with difflib's ratio, which tolerates a typo or a missing word.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from functools import lru_cache

from ..models import MediaItem

FUZZY_TITLE = 0.88  # similarity at or above which a query is taken to name the title
# difflib's ratio punishes one typo in a short title hard ("matirx" vs "matrix" is 0.83): from six
# letters on, a ratio of 0.8 counts, scaled up to the common threshold.
SHORT_TITLE = 6
SHORT_TITLE_RATIO = 0.8
_ARTICLE = re.compile(r"^(?:the|a|an|le|la|les|el|il|der|die|das)\s+")
_ROMAN = {"ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6"}


@lru_cache(maxsize=65536)
def normalise_title(text: str) -> str:
    """Lower case, no accents or punctuation, single spaces, "&" as "and", roman sequel numbers as digits."""
    folded = text.casefold()
    if not folded.isascii():  # ASCII has no accents to strip (NFKD leaves it as it is)
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = folded.replace("&", " and ")
    words = re.sub(r"[^\w\s]|_", " ", folded).split()
    return " ".join(_ROMAN.get(w, w) for w in words)


def _bare(title: str) -> str:
    return _ARTICLE.sub("", title)


@lru_cache(maxsize=65536)
def _title_forms(title: str) -> tuple[str, str]:
    """A catalog title normalised, and the same without its leading article (each candidate's title
    is compared with every query that retrieves it: worked out once)."""
    normal = normalise_title(title)
    return normal, _bare(normal)


class TitleMatcher:
    """How closely one query names each candidate's title; the query is normalised once.

    Returns 1.0 for the same normalised title (or original title, a leading article optional), the
    difflib ratio when it reaches SHORT_TITLE_RATIO (raised to FUZZY_TITLE for one typo in a title of
    six letters or more), else 0.0. difflib's cheap upper bounds skip most candidates.
    """

    def __init__(self, query: str) -> None:
        self.query = normalise_title(query)
        self.bare = _bare(self.query)
        # difflib caches what it learns about its second sequence: the query, set once for all titles.
        self._matcher = SequenceMatcher(None, "", self.bare, autojunk=False)

    def similarity(self, item: MediaItem) -> float:
        return self.similarity_to(item.title, item.original_title)

    def similarity_to(self, *titles: str | None) -> float:
        """The similarity to the best of an item's titles (title, original title)."""
        if not self.query:
            return 0.0
        best = 0.0
        for title in titles:
            if not title:
                continue
            t, bare = _title_forms(title)
            if self.query == t or self.bare == bare:
                return 1.0
            best = max(best, self._fuzzy(bare))
        return best

    def _fuzzy(self, title: str) -> float:
        total = len(self.bare) + len(title)
        if not total or 2.0 * min(len(self.bare), len(title)) / total < SHORT_TITLE_RATIO:
            return 0.0  # the lengths alone rule a match out (difflib's real_quick_ratio, for free)
        matcher = self._matcher
        matcher.set_seq1(title)
        if matcher.real_quick_ratio() < SHORT_TITLE_RATIO or matcher.quick_ratio() < SHORT_TITLE_RATIO:
            return 0.0
        ratio = matcher.ratio()
        if ratio < SHORT_TITLE_RATIO:
            return 0.0
        if min(len(self.bare), len(title)) >= SHORT_TITLE and ratio < FUZZY_TITLE:
            return FUZZY_TITLE  # one typo in a title of six letters or more still names it
        return ratio


def title_similarity(query: str, item: MediaItem) -> float:
    """TitleMatcher(query).similarity(item), for one item."""
    return TitleMatcher(query).similarity(item)


def title_coverage(query_terms: list[str], item: MediaItem) -> float:
    """Share of the query's words that appear in the title, times the share of title words asked for."""
    title_words = set(normalise_title(item.title).split())
    if not query_terms or not title_words:
        return 0.0
    hit = sum(1 for t in query_terms if t in title_words)
    return (hit / len(query_terms)) * (hit / len(title_words))
