"""The public search-quality benchmark's data: a catalog variant and queries built from the demo catalog.

Three query families, all derived from data we ship (nothing hand-picked per query):
- keyword: a TMDB keyword is the query; every movie that carries it is relevant. The benchmark's
  catalog has those keywords removed from every item, so neither BM25 nor the model can read the
  answer off the keyword list: they must infer it from titles, overviews, genres and other keywords.
- known-item: six content words drawn from a movie's overview in a scrambled order, proper nouns
  dropped (how a user half-remembers a plot) -> that movie.
- title: a movie's title, lower-cased, punctuation dropped, sometimes only its first words -> that
  movie (and any other movie with the same normalised title).

Each query is assigned to the dev split (for fitting) or the test split (for reporting) by a hash of
its text, so the split is stable and independent of the systems being measured.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SEED = 15
KEYWORD_QUERIES = 120
KNOWN_ITEM_QUERIES = 150
TITLE_QUERIES = 100
KEYWORD_DF = (12, 150)  # document frequency of a keyword query: specific, but with several answers
# Keywords that describe the production, not the film a user looks for.
META_KEYWORDS = {
    "3d",
    "imax",
    "woman director",
    "independent film",
    "duringcreditsstinger",
    "aftercreditsstinger",
    "based on novel",
    "sequel",
    "remake",
    "biography",
    "sport",
    "animation",
    "anime",
    "musical",
    "based on comic book",
    "based on true story",
    "based on a true story",
    "silent film",
    "stop motion",
    "short",
    "live action",
    "black and white",
    "documentary",
    "christmas",
    "new york",
    "los angeles",
    "london england",
    "paris",
    "california",
    "based on play or musical",
    "based on young adult novel",
    "marvel comic",
    "dc comics",
    "marvel cinematic universe",
    "cgi",
}
STOPWORDS = set(
    """a an the and or but if of to in on at by for with from into onto over under about after before
    his her their its our your my he she they it we you i him them us who whom whose which that this
    these those is are was were be been being has have had do does did will would can could should may
    might must not no nor so than then there here when where while as also only just very more most
    one two three four five first last new old own other another such each every all any both few
    many much some what how why up down out off again once until during between through himself
    herself themselves itself yet still even ever now soon later must finds find gets get becomes
    become takes take make makes made way life lives story film movie years year day time""".split()
)
SPLITS = ("dev", "test")


@dataclass(frozen=True)
class Query:
    """One benchmark query: its text, family, split and the tmdb ids that answer it."""

    text: str
    family: str
    split: str
    relevant: tuple[int, ...]


def split_of(text: str) -> str:
    digest = hashlib.sha256(f"{SEED}:{text}".encode()).digest()
    return SPLITS[digest[0] % 2]


def read_catalog(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _normalise_title(title: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", title.lower()).split())


def build(catalog_path: Path) -> tuple[list[dict], list[Query]]:
    """The benchmark's catalog (query keywords removed) and its queries."""
    rows = [r for r in read_catalog(catalog_path) if r.get("tmdb_id")]
    rng = random.Random(SEED)
    df = Counter(k for r in rows for k in set(r.get("keywords") or []))
    candidates = sorted(
        k
        for k, n in df.items()
        if KEYWORD_DF[0] <= n <= KEYWORD_DF[1] and k not in META_KEYWORDS and len(k) > 2
    )
    rng.shuffle(candidates)
    chosen = set(candidates[:KEYWORD_QUERIES])
    queries: list[Query] = []
    for kw in sorted(chosen):
        relevant = tuple(sorted(r["tmdb_id"] for r in rows if kw in (r.get("keywords") or [])))
        queries.append(Query(kw, "keyword", split_of(kw), relevant))
    catalog = []
    for r in rows:
        copy = dict(r)
        copy["keywords"] = [k for k in r.get("keywords") or [] if k not in chosen]
        catalog.append(copy)

    with_overview = [r for r in rows if r.get("overview") and len((r["overview"] or "").split()) >= 25]
    titles = Counter(_normalise_title(r["title"]) for r in rows)
    for r in rng.sample(with_overview, KNOWN_ITEM_QUERIES):
        words = [
            w.lower()
            for w in re.findall(r"[A-Za-z][A-Za-z'-]+", r["overview"])
            if w.lower() not in STOPWORDS and not w[0].isupper() and len(w) > 2
        ]
        words = list(dict.fromkeys(words))
        if len(words) < 6:
            continue
        picked = rng.sample(words, 6)
        text = " ".join(picked)
        queries.append(Query(text, "known-item", split_of(text), (r["tmdb_id"],)))

    popular = [
        r for r in rows if (r.get("vote_count") or 0) >= 50 and titles[_normalise_title(r["title"])] == 1
    ]
    for r in rng.sample(popular, TITLE_QUERIES):
        words = _normalise_title(r["title"]).split()
        text = " ".join(words[:3]) if len(words) > 4 and rng.random() < 0.5 else " ".join(words)
        relevant = tuple(sorted(o["tmdb_id"] for o in rows if _normalise_title(o["title"]).startswith(text)))
        queries.append(Query(text, "title", split_of(text), relevant))
    return catalog, queries


def write_catalog(catalog: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in catalog:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
