"""Import MovieLens ratings as interactions of the recommendation service."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..ingest.run import Progress
from .storage import insert_ratings, movie_item_mapping, read_movielens_ratings

if TYPE_CHECKING:
    from .service import RecommendService


def import_ratings(
    service: RecommendService,
    ratings_csv: Path,
    links_csv: Path | None = None,
    *,
    progress: Progress | None = None,
    user_prefix: str = "ml-",
) -> dict[str, Any]:
    """MovieLens ratings.csv as "rating" interactions (scale five) of users ``<user_prefix><userId>``.

    Movies map to catalog items by movielens_id, else through links.csv's tmdbId. Idempotent:
    each rating's key is ``ml:<userId>:<movieId>:<timestamp>``. Profiles of the touched users
    are rebuilt and a model refit is started in the background.
    """
    started = time.perf_counter()
    rows = read_movielens_ratings(Path(ratings_csv))
    mapping = movie_item_mapping(service.engine.store, {m for _, m, _, _ in rows}, links_csv)
    matched = [r for r in rows if r[1] in mapping]
    imported, duplicates, touched = insert_ratings(service.db, matched, mapping, user_prefix, progress)
    for position, touched_user in enumerate(sorted(touched)):
        service.rebuild_profile(touched_user)
        if progress and (position % 50 == 0 or position == len(touched) - 1):
            progress("profiles", position + 1, len(touched))
    if imported:
        service.models.refresh(wait=False)
    return {
        "ratings": len(rows), "imported": imported, "duplicates": duplicates,
        "unmatched": len(rows) - len(matched), "users": len({r[0] for r in matched}),
        "items": len({mapping[r[1]] for r in matched}), "seconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip
