"""Multi-stage search: parse → entities → dense + lexical candidates → fused score → diversity → top-k.

Stages:
1. The query is parsed offline (genres, moods, years, runtime, rating, type, "like X", people; the
   rest is text). A query that is a whole title ("2001 a space odyssey") keeps no filter from its
   words. A person-only query answers nothing, with a note (people are not indexed).
2. "like X" / "X but darker": X is resolved to a catalog item and the search runs from its vector.
3. Otherwise candidates come from the media collection (hybrid query vector, hard filters inside the
   vector search) and from the lexical index of the store of record (FTS5 / tsvector), filtered alike.
4. Each candidate's features (text similarity, dense and lexical ranks, lexical relevance, title
   match, genre, mood, quality, votes; see fusion.py) are combined with weights fitted on the dev
   split of bench/search_quality.py; items without an overview get no text or dense credit. Whole-
   query title matches come first; an optional trend boost (recency and popularity) is added.
5. Maximal marginal relevance re-ranks the pool for diversity; the top k are returned with reasons,
   each of which is true of the item.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from ..embed.hybrid import GENRE_SLICE, TEXT_SLICE, combine, genre_block, meta_block, mood_block
from ..errors import InvalidQuery, ItemNotFound, NotFound
from ..models import MediaItem
from ..store.lexical import LexicalIndex, open_lexical_index, query_terms
from ..store.origin import items_of_origin
from .entities import FUZZY_TITLE, TitleMatcher, normalise_title, title_coverage, title_similarity
from .filters import build_filter, resolve_genres, validate_range
from .fusion import TITLE_FIRST, WEIGHTS, Candidate, feature_matrix, passes_filters, weight_vector
from .items import ItemCache
from .parser import ParsedQuery, parse_query
from .query import NAME_NOTE
from .reasons import mood_strengths, search_reasons, similar_reasons, text_similarity
from .scoring import mmr, mood_score, quality_prior, trend_score
from .slots import CpuSlots, in_slot

if TYPE_CHECKING:
    from ..embed.hybrid import HybridWeights
    from ..ports import CatalogStore, Embedder, VectorCollection
    from ..settings import Settings

GENRE_BONUS = 0.12
MOOD_BONUS = 0.04
QUALITY_WEIGHT = 0.04
LIKE_MOOD_BONUS = 0.1  # "X but darker": the asked mood moves results further than a plain mood word
# A person's name with the words that introduced it ("starring", "directed by the director", "with").
_PERSON_PHRASE = (
    r"(?:(?<!\w)(?:starring|featuring|feat\.?|with|directed\s+by|written\s+by|by|from)\s+"
    r"(?:the\s+)?(?:(?:actor|actress|director)\s+)?)?{name}(?!\w)"
)
ORIGIN_POOL = 60  # items of an asked origin added to the pool ("french films")
# Full-text queries overlapped with the query embedding; shared by every pipeline in the process.
_LEXICAL_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="metamedia-lexical")
TITLE_DENSE_RANKS = 30  # dense candidates whose title is compared with the query
LEXICAL_POOL = 30  # lexical candidates per query, beside the dense ones


def semantic_text(parsed: ParsedQuery, explicit_genres: list[str], raw: str) -> str:
    """What the text model reads.

    The query as typed when it holds no filter phrases ("funny space movies" reads best whole);
    otherwise moods, genres and the free text without the filter phrases, so "90s" or "under 2
    hours" (hard filters) never pull on the text similarity.
    """
    for name in parsed.people:  # the query as if the person were never named
        raw = " ".join(
            re.sub(_PERSON_PHRASE.format(name=re.escape(name)), " ", raw, flags=re.IGNORECASE).split()
        )
    has_filters = any(
        v is not None
        for v in (parsed.year_min, parsed.year_max, parsed.runtime_min, parsed.runtime_max, parsed.rating_min)
    )
    if not has_filters and not parsed.exclude_genres and raw.strip():
        return raw.strip()
    genres = list(dict.fromkeys(parsed.genres + explicit_genres))
    words = [*parsed.moods, *genres, parsed.text.strip()]
    return " ".join(w for w in words if w) or raw.strip()


def indexed_vector(media: VectorCollection, item_id: int) -> np.ndarray:
    """The item's vector in the media index (ItemNotFound when it is not indexed)."""
    try:
        vec, _payload = media.get(item_id)
    except Exception as exc:
        raise ItemNotFound(f"no item with id {item_id}", {"id": item_id}) from exc
    return vec


class SearchPipeline:
    """The search and similar-items logic of the engine, over the ports it reads."""

    def __init__(
        self,
        store: CatalogStore,
        media: VectorCollection,
        embedder: Embedder,
        settings: Settings,
        weights: HybridWeights,
        lexical: LexicalIndex | None = None,
    ) -> None:
        self.store = store
        self.media = media
        self.embedder = embedder
        self.settings = settings
        self.weights = weights
        self.lexical = lexical or open_lexical_index(store.db)
        self.items = ItemCache(store)
        self.slots = CpuSlots(settings.search_concurrency)

    def _check_k(self, k: int) -> None:
        if not isinstance(k, int) or not 1 <= k <= self.settings.max_k:
            raise InvalidQuery(f"k must be between 1 and {self.settings.max_k}, got {k}")

    @in_slot
    def search(
        self,
        query: str,
        k: int = 10,
        *,
        genres: list[str] | None = None,
        year_min: int | None = None,
        year_max: int | None = None,
        rating_min: float | None = None,
        runtime_min: int | None = None,
        runtime_max: int | None = None,
        media_type: str | None = None,
        ef: int | None = None,
        trend: bool = True,
        diversity: bool = True,
        exclude_ids: set[int] | None = None,
        today: date | None = None,
    ) -> dict[str, Any]:
        """Search the catalog. Returns {"query": parsed intent, "results": [...], "took_ms"}."""
        started = time.perf_counter()
        self._check_k(k)
        validate_range("rating_min", rating_min, 0, 10)
        validate_range("year_min", year_min, 1800, 2100)
        validate_range("year_max", year_max, 1800, 2100)
        validate_range("runtime_min", runtime_min, 1, 1000)
        validate_range("runtime_max", runtime_max, 1, 1000)
        if media_type is not None and media_type not in ("movie", "tv"):
            raise InvalidQuery(f"type must be 'movie' or 'tv', got {media_type!r}")
        if ef is not None and not 1 <= ef <= 4096:
            raise InvalidQuery(f"ef must be between 1 and 4096, got {ef}")
        today = today or date.today()
        raw = (query or "").strip()
        parsed = parse_query(query or "", today=today)
        explicit = resolve_genres(genres)
        params = {
            "year_min": year_min,
            "year_max": year_max,
            "rating_min": rating_min,
            "runtime_min": runtime_min,
            "runtime_max": runtime_max,
            "media_type": media_type,
        }
        flt, eff = build_filter(parsed, explicit, params)
        if not raw and not explicit and flt is None:
            raise InvalidQuery("empty query: give some text, a genre or a filter")
        request = _Request(k, ef, trend, diversity, exclude_ids or set(), today, started, explicit)
        if parsed.people and not _has_subject(parsed, explicit, params):
            return _response(parsed, eff, [], started)  # only a person: nothing honest to rank
        if parsed.similar_to:
            source = self.resolve_title(parsed.similar_to)
            if source is not None:
                return self._search_like(source, parsed, flt, eff, request)
        plan = self._plan(query or "", parsed, explicit, params, request)
        return self._rank(plan, request)

    def _plan(
        self,
        query: str,
        parsed: ParsedQuery,
        explicit: list[str],
        params: dict[str, Any],
        request: _Request,
    ) -> _Plan:
        """Parse refinements and the candidate pool of a plain (not "like X") search."""
        raw = query.strip()
        flt, eff = build_filter(parsed, explicit, params)
        if _has_structure(parsed) and _is_title_query(parsed, self._best_title_similarity(raw)):
            # The whole phrase is a title ("2001 a space odyssey"): its words are not filters.
            parsed = ParsedQuery(raw=query, text=raw)
            flt, eff = build_filter(parsed, explicit, params)
        pool, text_vec, vectors = self._retrieve(parsed, explicit, flt, request)
        title_query = _is_title_query(parsed, max((c.title_sim for c in pool), default=0.0))
        if title_query and _has_structure(parsed):  # a fuzzy title the probe missed
            parsed = ParsedQuery(raw=query, text=raw)
            flt, eff = build_filter(parsed, explicit, params)
            pool, text_vec, vectors = self._retrieve(parsed, explicit, flt, request)
        if not title_query and self._unknown_name(parsed):
            parsed.notes.append(NAME_NOTE.format(name=parsed.text))
        return _Plan(parsed, flt, eff, pool, text_vec, title_query, vectors)

    def _unknown_name(self, parsed: ParsedQuery) -> bool:
        """Whether the query's text looks like a name no item mentions ("tom hanks movies"): two or
        three plain words, no other intent, and no item holding them all in any field."""
        words = parsed.text.split()
        if parsed.people or not 2 <= len(words) <= 3 or not all(w.isalpha() for w in words):
            return False
        plain = ParsedQuery(raw=parsed.raw, text=parsed.text, media_type=parsed.media_type)
        if parsed.to_dict() != plain.to_dict():  # genres, moods, filters: a description, not a name
            return False
        return not self.lexical.search_all(parsed.text, 1)

    def _retrieve(
        self, parsed: ParsedQuery, explicit: list[str], flt: dict[str, Any] | None, request: _Request
    ) -> tuple[list[Candidate], np.ndarray | None, np.ndarray]:
        """Dense and lexical candidates, merged, with what each retriever said about them, the query's
        text vector and the candidates' stored vectors (one row each, in pool order)."""
        text = semantic_text(parsed, explicit, parsed.raw or "")
        # Mood words stay out: "dark" is a mood (a feature of its own), not a word to find in titles.
        words = " ".join([*(parsed.genres or explicit), parsed.text])
        # The full-text query runs while the query is embedded (both wait outside the GIL).
        lexical_future = (
            _LEXICAL_THREADS.submit(self.lexical.search, words, LEXICAL_POOL) if words.strip() else None
        )
        with self.slots.paused():  # waiting for the embedder takes no CPU slot
            text_vec = self.embedder.encode_query(text) if text else None
        qvec = combine(
            text_vec,
            genre_block(parsed.genres or explicit),
            mood_block(parsed.moods),
            meta_block(
                year=None,
                runtime=None,
                rating=None,
                votes=None,
                popularity=None,
                media_type=None,
                has_overview=True,
            ),
            self.weights,
        )
        k, excluded = request.k, request.exclude_ids
        size = min(max(k * self.settings.search_oversample, 50), 2000)
        dense = [h.id for h in self.media.search(qvec, k=size + len(excluded), ef=request.ef, filter=flt)]
        lexical = lexical_future.result() if lexical_future is not None else []
        ids = list(dict.fromkeys([*dense, *(h.item_id for h in lexical)]))
        items = self.items.get_items([i for i in ids if i not in excluded])
        pool: dict[int, Candidate] = {}
        for rank, item_id in enumerate(dense):
            if item_id in items:
                pool[item_id] = Candidate(items[item_id], dense_rank=rank)
        for rank, hit in enumerate(lexical):
            item = items.get(hit.item_id)
            if item is None or (hit.item_id not in pool and not passes_filters(item, flt)):
                continue
            cand = pool.setdefault(hit.item_id, Candidate(item))
            cand.lexical_rank, cand.lexical_score = rank, hit.score
        if parsed.languages or parsed.countries:
            self._add_origin(pool, parsed, flt, excluded)
        candidates, vectors = self._with_vectors(list(pool.values()))
        terms = [normalise_title(t) for t in query_terms(parsed.text)]
        matcher = TitleMatcher(parsed.raw or "")
        for cand, sim in zip(candidates, text_similarities(text_vec, vectors), strict=True):
            cand.text_sim = sim
            # A title the query names is a lexical hit (its words) or near the top of the dense list
            # (a typo): the fuzzy matcher skips the rest of the pool.
            near = cand.dense_rank is not None and cand.dense_rank < TITLE_DENSE_RANKS
            if cand.lexical_rank is not None or near:
                cand.title_sim = matcher.similarity(cand.item)
            if WEIGHTS["title_words"]:  # a feature fitted to weight 0 is not computed
                cand.title_cover = title_coverage(terms, cand.item)
        return candidates, text_vec, vectors

    def _add_origin(
        self, pool: dict[int, Candidate], parsed: ParsedQuery, flt: dict[str, Any] | None, excluded: set[int]
    ) -> None:
        """Mark the pool's items of the asked origin and add the best-known others ("korean thriller":
        Korean films with an asked genre first, then the rest, most voted first)."""
        found = items_of_origin(self.store.db, parsed.languages, parsed.countries)
        wanted = set(parsed.genres)
        ranked = sorted(found, key=lambda row: -len(wanted.intersection(row[1])))  # stable: votes next
        origin_ids = {item_id for item_id, _ in found}
        for cand in pool.values():
            cand.origin = cand.item.id in origin_ids
        extra = [i for i, _ in ranked if i not in pool and i not in excluded][:ORIGIN_POOL]
        for item_id, item in self.store.get_items(extra).items():
            if passes_filters(item, flt):
                pool[item_id] = Candidate(item, origin=True)

    def _with_vectors(self, pool: list[Candidate]) -> tuple[list[Candidate], np.ndarray]:
        """Candidates with their stored hybrid vectors (an item not indexed yet is left out), and the
        vectors as one matrix in the same order (stacked once for every later stage)."""
        if not pool:
            return [], np.zeros((0, 0), dtype=np.float32)
        try:
            matrix = np.ascontiguousarray(self.media.get_vectors([c.item.id for c in pool]))
        except NotFound:  # rare: an item written but not indexed yet; look each one up
            found = []
            for cand in pool:
                try:
                    found.append((cand, self.media.get_vectors([cand.item.id])[0]))
                except NotFound:
                    continue
            pool = [c for c, _ in found]
            if not pool:
                return [], np.zeros((0, 0), dtype=np.float32)
            matrix = np.stack([v for _, v in found])
        for cand, vec in zip(pool, matrix, strict=True):
            cand.vector = vec
        return pool, matrix

    def _rank(self, plan: _Plan, request: _Request) -> dict[str, Any]:
        pool, parsed, eff = plan.pool, plan.parsed, plan.eff
        if not pool:
            return _response(parsed, eff, [], request.started)
        features, bonus = _features(plan, request.explicit)
        scores = features @ weight_vector() + bonus
        trends = np.zeros(len(pool), dtype=np.float64)
        if request.trend:
            half_life = self.settings.trend_half_life_days
            trends = np.array([trend_score(c.item, half_life, request.today) for c in pool])
            scores = scores + self.settings.trend_weight * trends
        vecs = plan.vectors
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        lam = self.settings.diversity_lambda if request.diversity else 1.0
        head = order[: max(request.k * 4, 40)]
        # MMR trades relevance against similarity (0..1): fused scores are rescaled to 0..1 over the
        # candidates it looks at, so diversity_lambda means what it says whatever the weights' scale.
        low, high = float(scores[head].min()), float(scores[head].max())
        relevance = (scores - low) / (high - low) if high > low else np.ones_like(scores)
        chosen = mmr(head, vecs, relevance, request.k, lam)
        terms = query_terms(parsed.text)
        results = []
        for pos in chosen:
            cand = pool[pos]
            reasons = search_reasons(
                cand.item,
                text_sim=cand.text_sim,
                parsed=parsed,
                explicit_genres=request.explicit,
                filters=eff,
                trend=trends[pos],
                title_match=cand.title_sim >= FUZZY_TITLE,
                terms=terms,
            )
            results.append(result_row(cand.item, scores[pos], reasons))
        return _response(parsed, eff, results, request.started)

    def _search_like(
        self,
        source: MediaItem,
        parsed: ParsedQuery,
        flt: dict[str, Any] | None,
        eff: dict[str, Any],
        request: _Request,
    ) -> dict[str, Any]:
        """ "movies like X", "X but darker": search from X's own vector, X itself left out."""
        qvec = self._item_vector(source.id)
        excluded = request.exclude_ids | {source.id}
        size = min(max(request.k * self.settings.search_oversample, 50), 2000)
        hits = self.media.search(qvec, k=size + len(excluded), ef=request.ef, filter=flt)
        hits = [h for h in hits if h.id not in excluded]
        items = self.items.get_items([h.id for h in hits])
        hits = [h for h in hits if h.id in items]
        extra = {"similar_to_id": source.id}
        if not hits:
            return _response(parsed, eff, [], request.started, extra)
        vecs = self.media.get_vectors([h.id for h in hits])
        src_text = qvec[TEXT_SLICE] / max(float(np.linalg.norm(qvec[TEXT_SLICE])), 1e-9)
        wanted = parsed.genres or request.explicit
        scores = np.zeros(len(hits), dtype=np.float64)
        text_sims = np.zeros(len(hits), dtype=np.float64)
        for i, h in enumerate(hits):
            it = items[h.id]
            text_sims[i] = text_similarity(src_text, vecs[i])
            s = float(h.score)
            if not it.overview:  # no plot: the text block must not count as plot similarity
                s -= float(vecs[i][TEXT_SLICE] @ qvec[TEXT_SLICE])
                text_sims[i] = 0.0
            if wanted:
                s += GENRE_BONUS * len(set(wanted) & set(it.genres)) / len(wanted)
            s += LIKE_MOOD_BONUS * mood_score(it, parsed.moods)
            s += QUALITY_WEIGHT * quality_prior(it)
            scores[i] = s
        order = [int(i) for i in np.argsort(-scores, kind="stable")]
        lam = self.settings.diversity_lambda if request.diversity else 1.0
        chosen = mmr(order[: max(request.k * 4, 40)], vecs, scores, request.k, lam)
        results = []
        for pos in chosen:
            it = items[hits[pos].id]
            reasons = similar_reasons(source, it, float(text_sims[pos]))
            reasons += [f"{m} mood" for m in parsed.moods if mood_strengths(it).get(m, 0.0) >= 0.5]
            reasons += [f"matches genre {g}" for g in wanted if g in it.genres]
            results.append(result_row(it, scores[pos], reasons))
        return _response(parsed, eff, results, request.started, extra)

    def candidate_features(self, query: str, k: int = 10) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The plain-search pool of a query: item ids, their FEATURES rows and the title-first bonus.

        For fitting the fusion weights (bench/search_quality.py --fit); the same stages as `search`
        up to the weighted sum ("like X" queries, trend and diversity left out).
        """
        request = _Request(k, None, False, False, set(), date.today(), time.perf_counter(), [])
        plan = self._plan(query, parse_query(query), [], {}, request)
        features, bonus = _features(plan, [])
        pool = plan.pool
        return [c.item.id for c in pool], features, bonus

    def _best_title_similarity(self, phrase: str) -> float:
        """How closely the best lexical match's title matches `phrase` (before any filter applies)."""
        matcher = TitleMatcher(phrase)
        hits = self.lexical.search_titles(phrase, 10)
        return max((matcher.similarity_to(*h.titles) for h in hits), default=0.0)

    def resolve_title(self, phrase: str) -> MediaItem | None:
        """The catalog item a phrase names ("the matrix", "Toy Story"), or None.

        Exact normalised title first, then the closest fuzzy match at or above FUZZY_TITLE; ties go to
        the item more people voted on (the one a user most likely means).
        """
        hits = self.lexical.search(phrase, 50)
        items = self.items.get_items([h.item_id for h in hits])
        best: tuple[float, int, int] | None = None
        for item in items.values():
            sim = title_similarity(phrase, item)
            if sim >= FUZZY_TITLE:
                key = (sim, item.vote_count or 0, -item.id)
                if best is None or key > best:
                    best = key
        return items[-best[2]] if best else None

    def _item_vector(self, item_id: int) -> np.ndarray:
        return indexed_vector(self.media, item_id)

    @in_slot
    def similar(
        self,
        item_id: int,
        k: int = 10,
        *,
        ef: int | None = None,
        diversity: bool = False,
    ) -> dict[str, Any]:
        """Items most like `item_id`, excluding itself, with reasons."""
        started = time.perf_counter()
        self._check_k(k)
        source = self.store.get_item(item_id)
        qvec = self._item_vector(item_id)
        hits = [h for h in self.media.search(qvec, k=min(k * 4 + 1, 4000), ef=ef) if h.id != item_id]
        items = self.items.get_items([h.id for h in hits])
        hits = [h for h in hits if h.id in items]
        if not hits:
            return {"item": result_row(source, 1.0, []), "results": [], "took_ms": _ms(started)}
        vecs = self.media.get_vectors([h.id for h in hits])
        scores = np.array([h.score for h in hits], dtype=np.float64)
        chosen = mmr(
            list(range(len(hits))),
            vecs,
            scores,
            k,
            self.settings.diversity_lambda if diversity else 1.0,
        )
        src_text = qvec[: GENRE_SLICE.start] / max(float(np.linalg.norm(qvec[: GENRE_SLICE.start])), 1e-9)
        results = [
            result_row(
                items[hits[p].id],
                scores[p],
                similar_reasons(source, items[hits[p].id], text_similarity(src_text, vecs[p])),
            )
            for p in chosen
        ]
        return {"item": result_row(source, 1.0, []), "results": results, "took_ms": _ms(started)}


def result_row(item: MediaItem, score: float, reasons: list[str]) -> dict[str, Any]:
    return {
        "id": item.id,
        "title": item.title,
        "year": item.year,
        "media_type": item.media_type,
        "genres": list(item.genres),  # a copy: the item is shared through the item cache
        "tmdb_id": item.tmdb_id,
        "imdb_id": item.imdb_id,
        "movielens_id": item.movielens_id,
        "score": round(float(score), 6),
        "reasons": reasons,
        "overview": item.overview,
        "poster_path": item.poster_path,
        "runtime": item.runtime,
        "vote_average": item.vote_average,
    }


@dataclass
class _Plan:
    """A plain search after parsing and retrieval: what `_rank` orders."""

    parsed: ParsedQuery
    flt: dict[str, Any] | None
    eff: dict[str, Any]
    pool: list[Candidate]
    text_vec: np.ndarray | None
    title_query: bool
    vectors: np.ndarray  # the pool's stored vectors, one row per candidate


def _features(plan: _Plan, explicit: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The FEATURES rows of the pool and the title-first bonus of whole-title matches."""
    pool, parsed = plan.pool, plan.parsed
    moods = {c.item.id: mood_score(c.item, parsed.moods) for c in pool}
    quality = {c.item.id: quality_prior(c.item) for c in pool}
    features = feature_matrix(pool, wanted_genres=parsed.genres or explicit, moods=moods, quality=quality)
    bonus = np.array(
        [TITLE_FIRST * c.title_sim if plan.title_query and c.title_sim >= FUZZY_TITLE else 0.0 for c in pool],
        dtype=np.float64,
    )
    return features, bonus


@dataclass(frozen=True)
class _Request:
    """The options of one search call that every stage needs."""

    k: int
    ef: int | None
    trend: bool
    diversity: bool
    exclude_ids: set[int]
    today: date
    started: float
    explicit: list[str]


def _has_subject(parsed: ParsedQuery, explicit: list[str], params: dict[str, Any]) -> bool:
    """Whether a query asks for anything besides a person (text, genres, moods, numeric filters)."""
    numeric = (parsed.year_min, parsed.year_max, parsed.runtime_min, parsed.runtime_max, parsed.rating_min)
    return bool(
        parsed.text
        or parsed.genres
        or parsed.moods
        or explicit
        or any(v is not None for v in numeric)
        or any(v is not None for n, v in params.items() if n != "media_type")
    )


def _has_structure(parsed: ParsedQuery) -> bool:
    return parsed != ParsedQuery(raw=parsed.raw, text=parsed.text)  # field by field, no deep copies


def _is_title_query(parsed: ParsedQuery, best_title_sim: float) -> bool:
    """Whether the whole query names a title. A query made only of intent words ("horror movies")
    must name it exactly, and a one-word intent ("comedy") never does."""
    if best_title_sim < FUZZY_TITLE:
        return False
    return bool(parsed.text) or (best_title_sim >= 1.0 and len(parsed.raw.split()) >= 2)


def text_similarities(text_vec: np.ndarray | None, vectors: np.ndarray) -> list[float]:
    """reasons.text_similarity of every candidate, in one pass over the text blocks of their stacked
    vectors (rows in pool order)."""
    if text_vec is None or not len(vectors):
        return [0.0] * len(vectors)
    blocks = np.ascontiguousarray(vectors[:, TEXT_SLICE])
    norms = np.sqrt(np.einsum("ij,ij->i", blocks, blocks))  # einsum: no threaded BLAS call (see mmr)
    dots = np.einsum("ij,j->i", blocks, text_vec)
    return [float(d / n) if n > 0 else 0.0 for d, n in zip(dots.tolist(), norms.tolist(), strict=True)]


def _response(
    parsed: ParsedQuery,
    eff: dict[str, Any],
    results: list[dict[str, Any]],
    started: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    query = parsed.to_dict() | {"filters": eff} | (extra or {})
    return {"query": query, "results": results, "took_ms": _ms(started)}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
