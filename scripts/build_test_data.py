"""Cut the small real-data slices under tests/data/ from the full public files (maintainers only).

    python scripts/build_test_data.py ../shared/data tests/data

Records are copied byte for byte (quoting, CRLF endings and broken rows kept), in file order:
the first rows of every file (which overlap across files, so merges happen) plus the rows the
tests name (Avatar, Toy Story, Heat, rows with a zero runtime, no votes, no date, a carriage
return in the overview, empty keyword lists, links without a TMDB id, one film of every genre).
MovieLens latest-small is copied whole (3 MB, its README with it).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

Row = dict[str, str]


def raw_records(path: Path) -> Iterator[tuple[str, list[str]]]:
    """(raw text, parsed fields) of every physical record, header first."""
    text = path.read_bytes().decode("utf-8")
    lines = iter(text.split("\n"))
    consumed: list[str] = []

    def feed() -> Iterator[str]:
        for line in lines:
            consumed.append(line)
            yield line + "\n"

    reader = csv.reader(feed())
    for fields in reader:
        raw = "\n".join(consumed) + "\n"
        consumed.clear()
        yield raw, fields


def cut(src: Path, dest: Path, keep: Callable[[int, Row], bool]) -> int:
    """Copy the header and every record whose (index, row) passes `keep`; return the rows kept."""
    records = raw_records(src)
    header_raw, header = next(records)
    out = io.StringIO()
    out.write(header_raw)
    kept = 0
    for index, (raw, fields) in enumerate(records):
        if not raw.strip():
            continue
        if keep(index, dict(zip(header, fields, strict=False))):
            out.write(raw)
            kept += 1
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(out.getvalue().encode("utf-8"))
    return kept


def firsts(rows: list[Row], tests: list[Callable[[Row], bool]], n: int = 3) -> set[int]:
    """Indexes of the first `n` rows passing each test."""
    picked: set[int] = set()
    for test in tests:
        picked.update([i for i, row in enumerate(rows) if test(row)][:n])
    return picked


def dict_rows(path: Path) -> list[Row]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def main(shared: Path, out: Path) -> None:
    if not (shared / "tmdb-5000").is_dir():
        raise SystemExit(
            f"needs {shared}/tmdb-5000 (the full public datasets beside the repository); not found"
        )
    csv.field_size_limit(sys.maxsize)
    tmdb = shared / "tmdb-5000" / "tmdb_5000_movies.csv"
    rows = dict_rows(tmdb)
    genres = {g["name"] for row in rows for g in json.loads(row["genres"] or "[]")}
    special = firsts(
        rows,
        [
            lambda r: r["runtime"] in ("0", "0.0"),
            lambda r: r["vote_count"] == "0",
            lambda r: not r["release_date"],
            lambda r: "\r" in r["overview"],
            lambda r: r["id"] in ("862", "949", "8844"),
        ],
    )
    special |= firsts(rows, [lambda r, g=g: g in r["genres"] for g in genres], n=2)
    counts = {
        "tmdb-5000/tmdb_5000_movies.csv": cut(
            tmdb, out / "tmdb-5000" / tmdb.name, lambda i, r: i < 600 or i in special
        )
    }

    tmd = shared / "the-movies-dataset"
    named = {"862", "949", "8844", "19995"}
    counts["the-movies-dataset/movies_metadata_part1.csv"] = cut(
        tmd / "movies_metadata_part1.csv",
        out / "the-movies-dataset" / "movies_metadata_part1.csv",
        lambda i, r: i < 400,
    )
    counts["the-movies-dataset/movies_metadata_part2.csv"] = cut(
        tmd / "movies_metadata_part2.csv",
        out / "the-movies-dataset" / "movies_metadata_part2.csv",
        lambda i, r: i < 200,
    )
    counts["the-movies-dataset/keywords.csv"] = cut(
        tmd / "keywords.csv",
        out / "the-movies-dataset" / "keywords.csv",
        lambda i, r: i < 600 or r.get("id") in named,
    )
    counts["the-movies-dataset/links.csv"] = cut(
        tmd / "links.csv",
        out / "the-movies-dataset" / "links.csv",
        lambda i, r: i < 3000 or r.get("tmdbId") in named,
    )
    ml = out / "movielens-latest-small"
    ml.mkdir(parents=True, exist_ok=True)
    for name in ("movies.csv", "links.csv", "ratings.csv", "README.txt"):
        shutil.copyfile(shared / "movielens-latest-small" / name, ml / name)
    for name, kept in counts.items():
        print(f"{name}: {kept} rows")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
