"""Build the bundled demo catalog from the real data in ../shared/data (maintainers only).

Merges TMDB 5000, The Movies Dataset (metadata + keywords) and MovieLens (movies + links) by TMDB id,
then writes every item that has a title as JSON Lines, gzip-compressed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from metamedia.ingest.export import export_catalog
from metamedia.ingest.run import ingest_files
from metamedia.store.factory import open_store

FILES = [
    "tmdb-5000/tmdb_5000_movies.csv",
    "the-movies-dataset/movies_metadata_part1.csv",
    "the-movies-dataset/movies_metadata_part2.csv",
    "the-movies-dataset/keywords.csv",
    "movielens-latest-small/movies.csv",
    "movielens-latest-small/links.csv",
]


def main(shared: Path, out: Path) -> None:
    missing = [f for f in FILES if not (shared / f).is_file()]
    if missing:
        raise SystemExit(f"needs {shared}/{missing[0]} (the full public datasets beside the repository); not found")
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/build.db")
        report = ingest_files(store, [shared / f for f in FILES], model_name="all-MiniLM-L6-v2")
        n = export_catalog(store, out)
        store.close()
    print(
        f"{n} items written to {out} ({out.stat().st_size / 1e6:.1f} MB); "
        f"rejected {report.rejected}, skipped {report.skipped}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
