"""The executable strategies: pure functions over a candidate list, a context and a user's stats.

Each rule takes (candidates, context, user_stats, params) and returns a RuleResult with the
adjusted list, list-level notes (why items were dropped) and the ids of the items it changed.
Inputs are never mutated. Score changes are scaled by the spread of the incoming scores, so a
rule means the same on cosine scores as on model scores.

user_stats keys the rules read (all optional):
  genre_stats: {genre: {"shown": int, "skipped": int, "completed": int, "completion_sum": float}}
  platforms: list of platforms the user can watch on
  min_rating: lowest vote_average (0-10) the user accepts
  preferred_rating: vote_average the user's completed films usually have
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import InvalidInput
from .base import daypart


@dataclass
class Candidate:
    """One recommendable item as the memory layer sees it."""

    item_id: str
    score: float
    genres: list[str] = field(default_factory=list)
    runtime: int | None = None
    vote_average: float | None = None
    year: int | None = None
    title: str = ""
    platforms: list[str] = field(default_factory=list)  # empty: availability unknown
    features: dict[str, float] = field(default_factory=dict)  # scoring factors, 0..1
    reasons: list[str] = field(default_factory=list)
    strategy_ids: list[str] = field(default_factory=list)  # strategies that changed this item


@dataclass
class RuleResult:
    """What one rule did: the new list, why items left it, and which items it changed."""

    candidates: list[Candidate]
    notes: list[str] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)


Rule = Callable[[list[Candidate], Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], RuleResult]


# Context key of a slate that was already diversified upstream (the diversity rule leaves it alone).
DIVERSIFIED = "diversified"


def _copy(candidates: list[Candidate]) -> list[Candidate]:
    return [
        replace(c, genres=list(c.genres), reasons=list(c.reasons), strategy_ids=list(c.strategy_ids))
        for c in candidates
    ]


def _spread(candidates: list[Candidate]) -> float:
    if len(candidates) < 2:
        return 1.0
    scores = [c.score for c in candidates]
    return (max(scores) - min(scores)) or 1.0


def _by_score(candidates: list[Candidate]) -> list[Candidate]:
    return sorted(candidates, key=lambda c: -c.score)


def genre_verdicts(user_stats: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Trusted genre preferences: genre -> ("avoid" | "like", explanation).

    A genre is judged only after `min_interactions` picks in it (default 5).
    """
    min_interactions = int(params.get("min_interactions", 5))
    avoid_skip_rate = float(params.get("avoid_skip_rate", 0.6))
    like_completion = float(params.get("like_completion", 0.7))
    verdicts: dict[str, tuple[str, str]] = {}
    for genre, stats in (user_stats.get("genre_stats") or {}).items():
        shown = int(stats.get("shown", 0))
        if shown < min_interactions:
            continue
        skipped = int(stats.get("skipped", 0))
        mean_completion = float(stats.get("completion_sum", 0.0)) / shown
        if skipped / shown >= avoid_skip_rate:
            verdicts[genre] = ("avoid", f"you skipped {skipped} of {shown} {genre.lower()} picks")
        elif mean_completion >= like_completion:
            completed = int(stats.get("completed", 0))
            verdicts[genre] = ("like", f"you finished {completed} of {shown} {genre.lower()} picks")
    return verdicts


def genre_preference(
    candidates: list[Candidate],
    context: Mapping[str, Any],
    user_stats: Mapping[str, Any],
    params: Mapping[str, Any],
) -> RuleResult:
    """Drop genres the user keeps skipping and lift genres they finish, once the evidence is trusted."""
    verdicts = genre_verdicts(user_stats, params)
    if not verdicts:
        return RuleResult(_copy(candidates))
    boost = float(params.get("boost", 0.15)) * _spread(candidates)
    avoided = {g: why for g, (kind, why) in verdicts.items() if kind == "avoid"}
    liked = {g: why for g, (kind, why) in verdicts.items() if kind == "like"}
    kept: list[Candidate] = []
    touched: set[str] = set()
    dropped: dict[str, int] = {}
    for cand in _copy(candidates):
        hit = [g for g in cand.genres if g in avoided]
        if hit:
            dropped[hit[0]] = dropped.get(hit[0], 0) + 1
            touched.add(cand.item_id)
            continue
        loved = [g for g in cand.genres if g in liked]
        if loved:
            cand.score += boost
            cand.reasons.append(f"more {loved[0]}: {liked[loved[0]]}")
            touched.add(cand.item_id)
        kept.append(cand)
    notes = [f"avoiding {g}: {avoided[g]} ({n} dropped)" for g, n in dropped.items()]
    return RuleResult(_by_score(kept), notes, touched)


def platform_availability(
    candidates: list[Candidate],
    context: Mapping[str, Any],
    user_stats: Mapping[str, Any],
    params: Mapping[str, Any],
) -> RuleResult:
    """Keep only titles on the user's platforms; titles with unknown availability stay."""
    platforms = {p.lower(): p for p in (user_stats.get("platforms") or [])}
    if not platforms:
        return RuleResult(_copy(candidates))
    kept: list[Candidate] = []
    touched: set[str] = set()
    dropped = 0
    for cand in _copy(candidates):
        if not cand.platforms:
            kept.append(cand)
            continue
        on = [p for p in cand.platforms if p.lower() in platforms]
        touched.add(cand.item_id)
        if not on:
            dropped += 1
            continue
        cand.reasons.append(f"on {on[0]}")
        kept.append(cand)
    notes = (
        [f"dropped {dropped} titles not on your platforms ({', '.join(platforms.values())})"]
        if dropped
        else []
    )
    return RuleResult(kept, notes, touched)


def session_fit(
    candidates: list[Candidate],
    context: Mapping[str, Any],
    user_stats: Mapping[str, Any],
    params: Mapping[str, Any],
) -> RuleResult:
    """Match runtime to the session: nothing much longer than the time available, longer films in the
    evening, shorter ones over lunch."""
    weight = float(params.get("weight", 0.3)) * _spread(candidates)
    tolerance = float(params.get("overrun_tolerance", 1.1))
    evening_min = int(params.get("evening_min_runtime", 100))
    lunch_max = int(params.get("lunch_max_runtime", 90))
    minutes = context.get("session_minutes")
    part = daypart(int(context["hour"])) if context.get("hour") is not None else None
    if minutes is None and part not in ("evening", "lunch"):
        return RuleResult(_copy(candidates))
    out = _copy(candidates)
    touched: set[str] = set()
    for cand in out:
        if cand.runtime is None or cand.runtime <= 0:
            continue
        delta = 0.0
        if minutes is not None:
            if cand.runtime > float(minutes) * tolerance:
                delta -= weight
                cand.reasons.append(
                    f"runs {cand.runtime} min, longer than your {int(minutes)}-minute session"
                )
            else:
                delta += weight / 3
                cand.reasons.append(f"fits your {int(minutes)}-minute session")
        if part == "evening" and cand.runtime >= evening_min:
            delta += weight
            cand.reasons.append("a full-length film for your evening")
        elif part == "lunch":
            if cand.runtime <= lunch_max:
                delta += weight
                cand.reasons.append("short enough for a lunch break")
            else:
                delta -= weight
        if delta:
            cand.score += delta
            touched.add(cand.item_id)
    ranked = _by_score(out)
    if minutes is not None:
        # An overrunning film is no use in this session, however relevant: it goes after every film that fits.
        limit = float(minutes) * tolerance
        ranked.sort(key=lambda c: c.runtime is not None and c.runtime > limit)
    return RuleResult(ranked, [], touched)


def rating_alignment(
    candidates: list[Candidate],
    context: Mapping[str, Any],
    user_stats: Mapping[str, Any],
    params: Mapping[str, Any],
) -> RuleResult:
    """Never go below the user's minimum rating; lift titles rated like the ones they finish."""
    min_rating = user_stats.get("min_rating", params.get("default_min_rating"))
    preferred = user_stats.get("preferred_rating")
    weight = float(params.get("calibration_weight", 0.1)) * _spread(candidates)
    kept: list[Candidate] = []
    touched: set[str] = set()
    dropped = 0
    for cand in _copy(candidates):
        if cand.vote_average is None:
            kept.append(cand)
            continue
        if min_rating is not None and cand.vote_average < float(min_rating):
            dropped += 1
            touched.add(cand.item_id)
            continue
        if preferred is not None and abs(cand.vote_average - float(preferred)) <= 1.0:
            cand.score += weight
            cand.reasons.append(f"rated {cand.vote_average:.1f}, like the films you finish")
            touched.add(cand.item_id)
        kept.append(cand)
    notes = (
        [f"dropped {dropped} titles rated below your minimum of {float(min_rating):.1f}"] if dropped else []
    )
    return RuleResult(_by_score(kept), notes, touched)


def diversity(
    candidates: list[Candidate],
    context: Mapping[str, Any],
    user_stats: Mapping[str, Any],
    params: Mapping[str, Any],
) -> RuleResult:
    """Keep the top `protected_top` (3) as ranked, then make `diverse_share` (20-30%) of the first
    `window` slots items whose genres the rest of the slate lacks. A slate the caller already
    diversified (context ``DIVERSIFIED``: the recommender's MMR) is left as it is: one pass, not two."""
    if context.get(DIVERSIFIED):
        return RuleResult(_copy(candidates))
    protected = int(params.get("protected_top", 3))
    share = min(max(float(params.get("diverse_share", 0.25)), 0.2), 0.3)
    out = _copy(candidates)
    window = min(int(params.get("window", 10)), len(out))
    if window <= protected + 1:
        return RuleResult(out)
    wanted = min(max(math.floor(share * window + 0.5), math.ceil(0.2 * window)), math.floor(0.3 * window))
    head, pool = out[:protected], out[protected:]
    covered = {g for c in head for g in c.genres}
    chosen: list[Candidate] = []
    for _ in range(wanted):
        best, best_key = None, (0.0, -math.inf)
        for cand in pool:
            if not cand.genres:
                continue
            novelty = sum(g not in covered for g in cand.genres) / len(cand.genres)
            key = (novelty, cand.score)
            if novelty > 0 and key > best_key:
                best, best_key = cand, key
        if best is None:
            break
        pool.remove(best)
        fresh = [g for g in best.genres if g not in covered]
        best.reasons.append(f"for variety: {', '.join(fresh)}, unlike your top picks")
        # Marks the pick as placed by diversity, so a failure analysis can blame the right factor.
        best.features = {**best.features, "diversity": 1.0}
        covered.update(best.genres)
        chosen.append(best)
    slots = window - protected
    body = list(pool)
    for i, cand in enumerate(chosen):
        # Spread the diverse picks evenly over the slots after the protected head.
        body.insert(math.floor((i + 1) * slots / (len(chosen) + 1)), cand)
    return RuleResult(head + body, [], {c.item_id for c in chosen})


RULES: dict[str, Rule] = {
    "rating_alignment": rating_alignment,
    "platform_availability": platform_availability,
    "genre_preference": genre_preference,
    "session_fit": session_fit,
    "diversity": diversity,
}
# Filters first, then score adjustments, then the slate-level reshuffle that must see final scores.
RULE_ORDER: tuple[str, ...] = tuple(RULES)


def apply_rule(
    name: str,
    candidates: list[Candidate],
    context: Mapping[str, Any],
    user_stats: Mapping[str, Any],
    params: Mapping[str, Any],
) -> RuleResult:
    """Run one named rule."""
    rule = RULES.get(name)
    if rule is None:
        raise InvalidInput(f"unknown rule {name!r}; known: {sorted(RULES)}")
    return rule(candidates, context, user_stats, params)
