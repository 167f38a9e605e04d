"""The five strategies the design lists, seeded as executable rules for the recommender."""

from __future__ import annotations

from .strategies import ReasoningBank, Strategy, StrategySpec

RECOMMEND_TASK = "recommendation"

SEED_STRATEGIES: tuple[StrategySpec, ...] = (
    StrategySpec(
        family_id="genre_preference",
        title="Genre preference extraction",
        description="Learn which genres a user likes or avoids from what they finish and what they skip, "
        "and shape recommendations around those genres.",
        task_type=RECOMMEND_TASK,
        tags=["personalisation", "genre"],
        heuristics=[
            "Require at least 5 interactions in a genre before trusting a preference.",
            "A genre skipped 60% of the time or more is avoided.",
            "A genre finished 70% of the way on average is liked and lifted.",
        ],
        checks=["the user has at least 5 interactions in the genre"],
        constraints=["never judge a genre from fewer than 5 interactions"],
        rule="genre_preference",
        params={"min_interactions": 5, "avoid_skip_rate": 0.6, "like_completion": 0.7, "boost": 0.15},
    ),
    StrategySpec(
        family_id="platform_availability",
        title="Platform availability",
        description="Recommend only titles the user can actually watch on the streaming platforms they have.",
        task_type=RECOMMEND_TASK,
        tags=["availability"],
        heuristics=[
            "Drop titles that are on none of the user's platforms; keep titles whose availability is unknown."
        ],
        checks=["the user's platforms are known"],
        constraints=["never recommend a title the user cannot watch"],
        rule="platform_availability",
        params={},
    ),
    StrategySpec(
        family_id="session_fit",
        title="Watch-time and session matching",
        description="Match film runtime to the viewing session: the time available, and the part of the day.",
        task_type=RECOMMEND_TASK,
        tags=["evening", "lunch", "short_session", "long_session", "runtime"],
        heuristics=[
            "Evening sessions prefer longer films (100 minutes or more).",
            "Lunch breaks prefer shorter films (90 minutes or less).",
            "Demote films that run more than 10% over the session length.",
        ],
        checks=["the session length or the hour is known", "the film's runtime is known"],
        constraints=["do not put a film that overruns the session at the top"],
        rule="session_fit",
        params={"evening_min_runtime": 100, "lunch_max_runtime": 90, "overrun_tolerance": 1.1, "weight": 0.3},
    ),
    StrategySpec(
        family_id="rating_alignment",
        title="Rating alignment calibration",
        description="Calibrate recommendations to the ratings a user accepts: never below their minimum rating, "
        "and prefer titles rated like the ones they finish.",
        task_type=RECOMMEND_TASK,
        tags=["quality", "rating"],
        heuristics=[
            "Never recommend below the user's minimum rating.",
            "Lift titles within one point of the user's usual rating.",
        ],
        checks=["the title's average rating is known"],
        constraints=["never below the user's minimum rating"],
        rule="rating_alignment",
        params={"calibration_weight": 0.1},
    ),
    StrategySpec(
        family_id="diversity",
        title="Diversity vs relevance",
        description="Balance relevance with variety: keep the first picks highly relevant and mix in items from "
        "genres the rest of the list lacks.",
        task_type=RECOMMEND_TASK,
        tags=["diversity", "exploration"],
        heuristics=[
            "Keep the top 3 as ranked by relevance.",
            "Inject 20-30% diverse items into the first 10 slots.",
        ],
        checks=["the list has more than 4 items"],
        constraints=["the top 3 stay the most relevant"],
        rule="diversity",
        params={"protected_top": 3, "diverse_share": 0.25, "window": 10},
    ),
)


def seed_strategies(bank: ReasoningBank) -> list[Strategy]:
    """Add the seed strategies whose family is not in the bank yet; returns the ones added."""
    families = {s.family_id for s in bank.list_strategies(status=None)}
    missing = [spec for spec in SEED_STRATEGIES if spec.family_id not in families]
    return bank.add_many(missing) if missing else []
