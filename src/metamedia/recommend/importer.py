"""Import MovieLens ratings as interactions of the recommendation service."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as Database

from ..ingest.run import Progress
from ..ports import CatalogStore
from .storage import insert_ratings, movie_item_mapping, read_movielens_ratings


def import_ratings(
    db: Database,
    store: CatalogStore,
    rebuild_profile: Callable[[str], Any],
    refit: Callable[[], Any],
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
    mapping = movie_item_mapping(store, {m for _, m, _, _ in rows}, links_csv)
    matched = [r for r in rows if r[1] in mapping]
    imported, duplicates, touched = insert_ratings(db, matched, mapping, user_prefix, progress)
    for position, touched_user in enumerate(sorted(touched)):
        rebuild_profile(touched_user)
        if progress and (position % 50 == 0 or position == len(touched) - 1):
            progress("profiles", position + 1, len(touched))
    if imported:
        refit()
    return {
        "ratings": len(rows), "imported": imported, "duplicates": duplicates,
        "unmatched": len(rows) - len(matched), "users": len({r[0] for r in matched}),
        "items": len({mapping[r[1]] for r in matched}), "seconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip
