"""The catalog index the offline web app keeps in the browser: metadata for display and filters, and
the media collection's hybrid vectors as int8 with one scale per row, versioned by the catalog
generation.

A client that holds generation G and the watermark W (the largest `updated_at` it has) asks for
`since=G&after=W`: an unchanged catalog answers `{"unchanged": true}`; otherwise only the items
written after W come back (with their vectors), plus the ids of every indexed item so the client
drops deleted ones. Without `since` the whole index comes back. Vectors are the ones the server's
dense search ranks on, so the browser's exact scan (query vector built the same way, see
`embed.hybrid.combine`) orders items as the server's dense stage does.
"""

from __future__ import annotations

import base64
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from ..embed.hybrid import GENRE_SLICE, META_SLICE, MOOD_SLICE, TEXT_SLICE
from ..errors import InvalidQuery
from ..vocab import GENRES, MOODS
from .filters import MIN_VOTES_WITH_RATING_FILTER
from .fusion import RANK_SCALE, TITLE_FIRST, WEIGHTS
from .pipeline import GENRE_BONUS, LEXICAL_POOL, LIKE_MOOD_BONUS, QUALITY_WEIGHT

if TYPE_CHECKING:
    from ..embed.hybrid import HybridWeights
    from ..models import MediaItem
    from ..ports import CatalogStore, VectorCollection

FORMAT = 1
MAX_QUANT = 127.0


def quantize_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and their float32 scales: row ≈ q * scale (the largest |value| maps to 127)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(vectors).max(axis=1) if len(vectors) else np.zeros(0, dtype=np.float32)
    scales = np.where(peak > 0, peak / MAX_QUANT, 1.0).astype(np.float32)
    q = np.clip(np.rint(vectors / scales[:, None]), -MAX_QUANT, MAX_QUANT).astype(np.int8)
    return q, scales


def _row(item: MediaItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "media_type": item.media_type,
        "year": item.year,
        "runtime": item.runtime,
        "vote_average": item.vote_average,
        "vote_count": item.vote_count,
        "popularity": item.popularity,
        "genres": list(item.genres),
        "keywords": list(item.keywords),
        "overview": item.overview or "",
        "tagline": item.tagline or "",
        "original_title": item.original_title or "",
        "companies": list(item.companies or []),
        "collection": item.collection or "",
        "poster_path": item.poster_path,
        "release_date": item.release_date,
        "updated_at": item.updated_at,
    }


def export_index(
    store: CatalogStore,
    media: VectorCollection,
    weights: HybridWeights,
    *,
    since: int | None = None,
    after: float | None = None,
    ranking: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The catalog index for the browser (whole, or the changes after the client's watermark).

    `ranking` carries the server's ranking settings (oversample, trend, diversity) so the browser
    ranks with the same numbers; the fusion weights come from `search.fusion`."""
    if since is not None and since < 0:
        raise InvalidQuery(f"since must be a catalog generation (>= 0), got {since}")
    if (since is None) != (after is None):
        raise InvalidQuery("give both since (generation) and after (watermark), or neither")
    generation = store.generation()
    if since is not None and since == generation:
        return {"format": FORMAT, "generation": generation, "unchanged": True}
    indexed = {int(i) for i in media.ids()}
    items = [item for item in store.iter_items() if item.id in indexed]
    watermark = max((item.updated_at for item in items), default=0.0)
    changed = [item for item in items if after is None or item.updated_at > after]
    changed.sort(key=lambda item: item.id)
    vectors = media.get_vectors([item.id for item in changed]) if changed else np.zeros((0, 1), np.float32)
    q, scales = quantize_rows(vectors)
    dim = int(vectors.shape[1]) if changed else int(META_SLICE.stop)
    return {
        "format": FORMAT,
        "generation": generation,
        "unchanged": False,
        "full": since is None,
        "watermark": watermark,
        "dim": dim,
        "layout": {
            "text": [TEXT_SLICE.start, TEXT_SLICE.stop],
            "genre": [GENRE_SLICE.start, GENRE_SLICE.stop],
            "mood": [MOOD_SLICE.start, MOOD_SLICE.stop],
            "meta": [META_SLICE.start, META_SLICE.stop],
        },
        "weights": asdict(weights),
        "ranking": {
            **(ranking or {}),
            "fusion": WEIGHTS,
            "rank_scale": RANK_SCALE,
            "title_first": TITLE_FIRST,
            "lexical_pool": LEXICAL_POOL,
            "min_votes_with_rating_filter": MIN_VOTES_WITH_RATING_FILTER,
            "like": {"genre_bonus": GENRE_BONUS, "mood_bonus": LIKE_MOOD_BONUS, "quality_weight": QUALITY_WEIGHT},
        },
        "genres": list(GENRES),
        "moods": list(MOODS),
        "ids": sorted(indexed & {item.id for item in items}),
        "items": [_row(item) for item in changed],
        "vectors": base64.b64encode(q.tobytes()).decode("ascii"),
        "scales": [float(s) for s in scales],
    }
