"""The public search-quality benchmark's data: a catalog variant and queries built from the demo catalog.

Query families, all derived from data we ship by fixed rules (nothing hand-picked per query), each
shaped like a kind of query users type (see bench/README.md):
- keyword: a TMDB keyword is the query ("time travel", "heist"); every movie that carries it is
  relevant. The benchmark's catalog has those keywords removed from every item, so neither BM25 nor
  the model can read the answer off the keyword list.
- known-item: a film's tagline (short, human-written, not its overview) -> that film; the tagline is
  removed from that film in the benchmark's catalog, so the query is never indexed text of the answer.
- title: a movie's title, lower-cased, punctuation dropped, sometimes only its first words.
- origin: "<language adjective> <genre>" ("french comedy", "japanese animation") -> every film in that
  original language with that genre.
- decade: "<decade> <genre> movies" ("90s horror movies") -> every film of the genre in the decade.
- exclusion: "<genre> but not <genre>" / "<genre> without <genre>" -> films with the first genre and
  without the second.
- company: "<studio> movies" ("pixar movies") -> every film that studio produced.
- like: "movies like <title>" -> the other films of its collection plus films sharing at least three
  specific keywords and a genre with it.

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
ORIGIN_QUERIES = 50
DECADE_QUERIES = 40
EXCLUSION_QUERIES = 30
COMPANY_QUERIES = 40
LIKE_QUERIES = 60
COMPANY_SIZE = (6, 80)
COMPANY_MEAN_VOTES = 500  # a studio users know by name: its films are widely seen
KNOWN_VOTES = 50  # attribute queries' relevant films: ones a user asking would have heard of  # films per studio: a studio a user names, not a distributor of thousands
LIKE_KEYWORD_DF = 300  # keywords rarer than this say what a film is about
ATTRIBUTE_FAMILIES = ("origin", "decade", "exclusion")
FAMILIES = ("keyword", "known-item", "title", "origin", "decade", "exclusion", "company", "like")
# How users name a film's original language (ISO 639-1 codes of the catalog's `language`).
LANGUAGE_ADJECTIVES = {
    "fr": "french",
    "de": "german",
    "it": "italian",
    "ja": "japanese",
    "es": "spanish",
    "zh": "chinese",
    "ru": "russian",
    "sv": "swedish",
    "hi": "hindi",
    "ko": "korean",
    "da": "danish",
    "cn": "cantonese",
}
GENRE_QUERY_WORDS = {"Science Fiction": "sci-fi", "Animation": "animated", "Documentary": "documentaries"}
EXCLUSION_FORMS = ("{a} but not {b}", "{a} without {b}", "{a} movies, no {b}")
LIKE_FORMS = ("movies like {title}", "similar to {title}", "something like {title}")
COMPANY_SUFFIXES = {
    "pictures",
    "films",
    "film",
    "entertainment",
    "productions",
    "production",
    "studios",
    "studio",
    "animation",
    "corporation",
    "company",
    "inc",
    "ltd",
    "llc",
    "co",
    "group",
    "media",
    "international",
}
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


def _short_company(name: str) -> str:
    """How a user names a studio: "Pixar Animation Studios" -> "pixar"."""
    words = _normalise_title(name).split()
    while len(words) > 1 and words[-1] in COMPANY_SUFFIXES:
        words.pop()
    return " ".join(words)


def _genre_word(genre: str) -> str:
    return GENRE_QUERY_WORDS.get(genre, genre.lower())


def build(catalog_path: Path) -> tuple[list[dict], list[Query]]:
    """The benchmark's catalog (query keywords and query taglines removed) and its queries."""
    rows = [r for r in read_catalog(catalog_path) if r.get("tmdb_id")]
    rng = random.Random(SEED)
    queries: list[Query] = []

    votes_of = {r["tmdb_id"]: r.get("vote_count") or 0 for r in rows}

    def add(text: str, family: str, relevant: set[int] | tuple[int, ...]) -> None:
        if family in ATTRIBUTE_FAMILIES:
            relevant = {t for t in relevant if votes_of[t] >= KNOWN_VOTES}
        if relevant:
            queries.append(Query(text, family, split_of(text), tuple(sorted(relevant))))

    # keyword
    df = Counter(k for r in rows for k in set(r.get("keywords") or []))
    candidates = sorted(
        k
        for k, n in df.items()
        if KEYWORD_DF[0] <= n <= KEYWORD_DF[1] and k not in META_KEYWORDS and len(k) > 2
    )
    rng.shuffle(candidates)
    chosen = set(candidates[:KEYWORD_QUERIES])
    for kw in sorted(chosen):
        add(kw, "keyword", {r["tmdb_id"] for r in rows if kw in (r.get("keywords") or [])})

    # known-item: taglines
    titles = Counter(_normalise_title(r["title"]) for r in rows)
    with_tagline = [
        r
        for r in rows
        if r.get("tagline")
        and 4 <= len(r["tagline"].split()) <= 14
        and _normalise_title(r["title"]) not in _normalise_title(r["tagline"])
        and (r.get("vote_count") or 0) >= 20
    ]
    tagline_ids = set()
    for r in rng.sample(with_tagline, KNOWN_ITEM_QUERIES):
        text = _normalise_title(r["tagline"])
        tagline_ids.add(r["tmdb_id"])
        add(text, "known-item", (r["tmdb_id"],))

    # title
    popular = [
        r for r in rows if (r.get("vote_count") or 0) >= 50 and titles[_normalise_title(r["title"])] == 1
    ]
    for r in rng.sample(popular, TITLE_QUERIES):
        words = _normalise_title(r["title"]).split()
        text = " ".join(words[:3]) if len(words) > 4 and rng.random() < 0.5 else " ".join(words)
        add(text, "title", {o["tmdb_id"] for o in rows if _normalise_title(o["title"]).startswith(text)})

    genres = sorted({g for r in rows for g in r.get("genres") or []} - {"TV Movie", "Foreign"})

    # origin: language x genre
    combos = []
    for code, adjective in sorted(LANGUAGE_ADJECTIVES.items()):
        for g in genres:
            rel = {r["tmdb_id"] for r in rows if r.get("language") == code and g in (r.get("genres") or [])}
            if len(rel) >= 5:
                combos.append((f"{adjective} {_genre_word(g)}", rel))
    for text, rel in rng.sample(combos, min(ORIGIN_QUERIES, len(combos))):
        add(text, "origin", rel)

    # decade x genre
    combos = []
    for decade in range(1950, 2020, 10):
        for g in genres:
            rel = {
                r["tmdb_id"]
                for r in rows
                if r.get("year") and decade <= r["year"] < decade + 10 and g in (r.get("genres") or [])
            }
            if len(rel) >= 5:
                combos.append(
                    (f"{decade if decade >= 2000 else str(decade)[2:]}s {_genre_word(g)} movies", rel)
                )
    for text, rel in rng.sample(combos, min(DECADE_QUERIES, len(combos))):
        add(text, "decade", rel)

    # exclusion: genre pairs that often go together
    pairs = Counter(
        (a, b) for r in rows for a in r.get("genres") or [] for b in r.get("genres") or [] if a != b
    )
    combos = []
    for (a, b), n in sorted(pairs.items()):
        if a in genres and b in genres and n >= 100:
            rel = {
                r["tmdb_id"]
                for r in rows
                if a in (r.get("genres") or []) and b not in (r.get("genres") or [])
            }
            form = EXCLUSION_FORMS[len(combos) % len(EXCLUSION_FORMS)]
            combos.append((form.format(a=_genre_word(a), b=_genre_word(b)), rel))
    for text, rel in rng.sample(combos, min(EXCLUSION_QUERIES, len(combos))):
        add(text, "exclusion", rel)

    # company
    by_company: dict[str, set[int]] = {}
    votes: Counter[str] = Counter()
    for r in rows:
        for c in r.get("companies") or []:
            by_company.setdefault(_short_company(c), set()).add(r["tmdb_id"])
            votes[_short_company(c)] += r.get("vote_count") or 0
    combos = [
        (f"{name} movies", rel)
        for name, rel in sorted(by_company.items())
        if COMPANY_SIZE[0] <= len(rel) <= COMPANY_SIZE[1]
        and len(name) > 2
        and votes[name] / len(rel) >= COMPANY_MEAN_VOTES
    ]
    for text, rel in rng.sample(combos, min(COMPANY_QUERIES, len(combos))):
        add(text, "company", rel)

    # like X
    specific = {k for k, n in df.items() if n <= LIKE_KEYWORD_DF and k not in META_KEYWORDS}
    collections: dict[str, set[int]] = {}
    for r in rows:
        if r.get("collection"):
            collections.setdefault(r["collection"], set()).add(r["tmdb_id"])
    sources = [
        r for r in rows if (r.get("vote_count") or 0) >= 1000 and titles[_normalise_title(r["title"])] == 1
    ]
    combos = []
    for r in sources:
        kws = set(r.get("keywords") or []) & specific
        rel = set(collections.get(r.get("collection") or "", set()))
        for o in rows:
            if len(kws & set(o.get("keywords") or [])) >= 3 and set(r.get("genres") or []) & set(
                o.get("genres") or []
            ):
                rel.add(o["tmdb_id"])
        rel.discard(r["tmdb_id"])
        if len(rel) >= 3:
            form = LIKE_FORMS[len(combos) % len(LIKE_FORMS)]
            combos.append((form.format(title=_normalise_title(r["title"])), rel))
    for text, rel in rng.sample(combos, min(LIKE_QUERIES, len(combos))):
        add(text, "like", rel)

    catalog = []
    for r in rows:
        copy = dict(r)
        copy["keywords"] = [k for k in r.get("keywords") or [] if k not in chosen]
        if r["tmdb_id"] in tagline_ids:
            copy["tagline"] = None
        catalog.append(copy)
    return catalog, queries


def write_catalog(catalog: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in catalog:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
