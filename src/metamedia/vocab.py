"""Controlled vocabularies: canonical genres, source-genre aliases and moods."""

from __future__ import annotations

# TMDB's movie genres are the canonical set; every source maps onto them.
GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Family",
    "Fantasy",
    "History",
    "Horror",
    "Music",
    "Mystery",
    "Romance",
    "Science Fiction",
    "TV Movie",
    "Thriller",
    "War",
    "Western",
)

# Source spellings (lower-case) -> canonical genres. An empty tuple drops the label.
GENRE_ALIASES: dict[str, tuple[str, ...]] = {
    **{g.lower(): (g,) for g in GENRES},
    # MovieLens
    "sci-fi": ("Science Fiction",),
    "children": ("Family",),
    "children's": ("Family",),
    "film-noir": ("Crime", "Mystery"),
    "musical": ("Music",),
    "imax": (),
    "(no genres listed)": (),
    # TMDB TV genres
    "action & adventure": ("Action", "Adventure"),
    "sci-fi & fantasy": ("Science Fiction", "Fantasy"),
    "war & politics": ("War",),
    "kids": ("Family",),
    "news": ("Documentary",),
    "reality": ("Documentary",),
    "soap": ("Drama",),
    "talk": (),
    "foreign": (),
}


def canonical_genres(labels: list[str] | tuple[str, ...]) -> list[str]:
    """Map source genre labels to canonical genres, keeping first-seen order, dropping unknowns."""
    out: list[str] = []
    for label in labels:
        for g in GENRE_ALIASES.get(label.strip().lower(), ()):
            if g not in out:
                out.append(g)
    return out


MOODS: tuple[str, ...] = (
    "exciting",
    "relaxing",
    "happy",
    "sad",
    "intense",
    "calm",
    "suspenseful",
    "dark",
    "feel-good",
)
