"""The nightly learner (`metamedia learn`): hygiene, skills, causal weights, strategy evolution, compaction.

Moat metrics, computed over the memory after a run:
  patterns     = |active strategies with uses >= 1| + |causal edges with confidence >= 0.95|
  skills       = |active skills|
  mean_success = sum(weight * success) / sum(weight) over active episodes (0 when there are none)
  coverage     = |active episodes whose task has an active skill for its part of day (or for any
                 part of day, when the skill has none)| / |active episodes|  (0 when there are none)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, select, update

from .base import Clock, Embedder, daypart, wall_clock
from .causal import CausalEstimator, FeatureEffect, top_features
from .hygiene import merge_duplicate_episodes, merge_duplicate_strategies
from .interactions import Interaction, to_arrays
from .reflexion import FACTOR_STRATEGY
from .schema import causal_weights, learner_runs
from .service import AgentMemory

PATTERN_EDGE_CONFIDENCE = 0.95
POPULATION = "population"


def _scaled(params: dict[str, Any], key: str, default: float, factor: float, floor: float) -> float:
    return round(max(float(params.get(key, default)) * factor, floor), 4)


# How each strategy family adapts when failures keep being blamed on it.
EVOLUTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "genre_preference": lambda p: {
        "boost": _scaled(p, "boost", 0.15, 0.8, 0.0),
        "avoid_skip_rate": round(max(float(p.get("avoid_skip_rate", 0.6)) - 0.05, 0.5), 4),
    },
    "session_fit": lambda p: {
        "weight": _scaled(p, "weight", 0.3, 0.8, 0.05),
        "overrun_tolerance": round(max(float(p.get("overrun_tolerance", 1.1)) - 0.05, 1.0), 4),
    },
    "rating_alignment": lambda p: {"calibration_weight": _scaled(p, "calibration_weight", 0.1, 0.8, 0.0)},
    "diversity": lambda p: {"diverse_share": round(max(float(p.get("diverse_share", 0.25)) - 0.05, 0.2), 4)},
}


@dataclass
class LearnerConfig:
    skill_min_attempts: int = 3
    skill_min_reward: float = 0.6
    skill_window_days: float = 30.0
    evolve_min_failures: int = 5
    evolve_below_success: float = 0.5
    causal_bootstrap: int = 200
    causal_min_user_rows: int = 20


@dataclass
class MoatMetrics:
    patterns: int
    skills: int
    mean_success: float
    coverage: float


@dataclass
class LearnerReport:
    """What one learner run changed, and the moat metrics after it."""

    started_at: float
    duration_s: float
    changes: list[str] = field(default_factory=list)
    merged_strategies: int = 0
    merged_episodes: int = 0
    skills_created: int = 0
    skills_updated: int = 0
    evolved: list[tuple[str, str]] = field(default_factory=list)
    causal_weights: dict[str, float] = field(default_factory=dict)
    top_features: list[str] = field(default_factory=list)
    users_with_effects: int = 0
    interactions: int = 0
    index_rows: dict[str, int] = field(default_factory=dict)
    moat: MoatMetrics = field(default_factory=lambda: MoatMetrics(0, 0, 0.0, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


InteractionSource = Iterable[Interaction] | Callable[[], Iterable[Interaction]] | None


def run_learner(
    engine: Engine,
    embedder: Embedder,
    interactions: InteractionSource = None,
    *,
    config: LearnerConfig | None = None,
    clock: Clock = wall_clock,
) -> LearnerReport:
    """Run every nightly step once and record the report in memory_learner_runs."""
    cfg = config or LearnerConfig()
    started, t0 = clock(), time.perf_counter()
    memory = AgentMemory(engine, embedder, clock=clock, seed=False)
    report = LearnerReport(started_at=started, duration_s=0.0)

    strategy_merges = merge_duplicate_strategies(memory.bank)
    episode_merges = merge_duplicate_episodes(memory.reflexion)
    report.merged_strategies, report.merged_episodes = len(strategy_merges), len(episode_merges)
    report.changes += [
        f"merged strategy {m.merged} into {m.survivor} (similarity {m.similarity:.3f})"
        for m in strategy_merges
    ]
    if episode_merges:
        report.changes.append(f"merged {len(episode_merges)} duplicate episodes")

    consolidation = memory.skills.consolidate(
        min_attempts=cfg.skill_min_attempts,
        min_reward=cfg.skill_min_reward,
        window_days=cfg.skill_window_days,
    )
    report.skills_created, report.skills_updated = len(consolidation.created), len(consolidation.updated)
    report.changes += [
        f"new skill {s.name!r}: {s.successes}/{s.attempts} successes" for s in consolidation.created
    ]

    rows = list(interactions() if callable(interactions) else interactions or [])
    if rows:
        _refresh_causal(memory, rows, cfg, report)

    report.evolved = evolve_from_reflexion(memory, cfg)
    report.changes += [f"evolved {old} -> {new} from reflexion evidence" for old, new in report.evolved]

    memory.bank.reload()
    memory.reflexion.reload()
    report.index_rows = {"strategies": len(memory.bank), "episodes": len(memory.reflexion)}
    report.moat = moat_metrics(memory)
    report.duration_s = time.perf_counter() - t0
    with engine.begin() as conn:
        conn.execute(
            insert(learner_runs).values(started_at=started, finished_at=clock(), report=report.to_dict())
        )
    return report


def _refresh_causal(
    memory: AgentMemory, rows: list[Interaction], cfg: LearnerConfig, report: LearnerReport
) -> None:
    arrays = to_arrays(rows)
    report.interactions = len(rows)
    estimator = CausalEstimator(arrays.features, arrays.completion, arrays.feature_names, arrays.confounders)
    effects = estimator.population(n_bootstrap=cfg.causal_bootstrap)
    per_user = estimator.per_user(arrays.user_ids, min_rows=cfg.causal_min_user_rows)
    old = load_causal_weights(memory.engine)
    store_causal_effects(memory, effects, per_user)
    report.causal_weights = {e.feature: e.effect for e in effects}
    report.top_features = [e.feature for e in top_features(effects, 3)]
    report.users_with_effects = len(per_user)
    for e in effects:
        before = old.get(e.feature)
        was = "new" if before is None else f"{before:+.3f}"
        report.changes.append(
            f"causal weight {e.feature}: {was} -> {e.effect:+.3f} [{e.ci_low:+.3f}, {e.ci_high:+.3f}]"
        )


def store_causal_effects(
    memory: AgentMemory, effects: list[FeatureEffect], per_user: dict[str, dict[str, float]]
) -> None:
    """Write population and per-user weights (superseding the previous ones) and the graph edges."""
    now = memory.clock()
    n = effects[0].sample_size if effects else 0
    records = [
        {"scope": POPULATION, "feature": e.feature, "effect": e.effect, "ci_low": e.ci_low, "ci_high": e.ci_high,
         "sample_size": e.sample_size, "method": e.method, "status": "active", "created_at": now}
        for e in effects
    ]  # fmt: skip
    for user, weights in per_user.items():
        records += [
            {"scope": f"user:{user}", "feature": f, "effect": w, "ci_low": w, "ci_high": w, "sample_size": n,
             "method": "shrunk", "status": "active", "created_at": now}
            for f, w in weights.items()
        ]  # fmt: skip
    with memory.engine.begin() as conn:
        conn.execute(
            update(causal_weights).where(causal_weights.c.status == "active").values(status="superseded")
        )
        if records:
            conn.execute(insert(causal_weights), records)
    completion = memory.graph.node("outcome", "completion")
    for e in effects:
        cause = memory.graph.node("feature", e.feature)
        memory.graph.add_edge(
            [cause],
            completion,
            uplift=e.effect,
            confidence=e.confidence,
            sample_size=e.sample_size,
            replace_evidence=True,
        )


def load_causal_weights(engine: Engine, scope: str = POPULATION) -> dict[str, float]:
    """The active causal weights of a scope ("population" or "user:<id>"), for CausalReranker."""
    query = select(causal_weights.c.feature, causal_weights.c.effect).where(
        (causal_weights.c.scope == scope) & (causal_weights.c.status == "active")
    )
    with engine.connect() as conn:
        return {r.feature: r.effect for r in conn.execute(query)}


def evolve_from_reflexion(memory: AgentMemory, cfg: LearnerConfig) -> list[tuple[str, str]]:
    """Evolve each executable strategy that keeps failing for a reason blamed on it."""
    evolved = []
    for strategy in memory.bank.list_strategies():
        adapt = EVOLUTIONS.get(strategy.family_id)
        if adapt is None or strategy.smoothed_success >= cfg.evolve_below_success:
            continue
        patterns = memory.reflexion.failure_patterns(
            strategy_id=strategy.id, min_count=cfg.evolve_min_failures
        )
        blamed = [p for p in patterns if FACTOR_STRATEGY.get(p.factor) == strategy.family_id]
        if not blamed:
            continue
        top = blamed[0]
        new = memory.bank.evolve(
            strategy.id,
            changes={"params": adapt(dict(strategy.params))},
            evidence={"pattern": top.key, "failures": top.count, "episodes": top.episode_ids[:20],
                      "uses": strategy.uses, "smoothed_success": round(strategy.smoothed_success, 4)},
            reason=f"{top.count} failures blamed on {top.key} while success was {strategy.smoothed_success:.2f}",
        )  # fmt: skip
        evolved.append((strategy.id, new.id))
    return evolved


def moat_metrics(memory: AgentMemory) -> MoatMetrics:
    """The moat metrics defined in the module docstring."""
    used = sum(1 for s in memory.bank.list_strategies() if s.uses >= 1)
    confident_edges = sum(1 for e in memory.graph.edges() if e.confidence >= PATTERN_EDGE_CONFIDENCE)
    skills = memory.skills.list_skills()
    eps = memory.reflexion.episodes()
    total = sum(e.weight for e in eps)
    mean_success = sum(e.weight for e in eps if e.success) / total if total else 0.0
    covered_by: dict[str, list[set[str]]] = {}
    for s in skills:
        covered_by.setdefault(s.task, []).append(set(s.context_tags))
    covered = 0
    for e in eps:
        hour = e.context.get("hour")
        tags = {daypart(int(hour))} if hour is not None else set()
        if any(need <= tags for need in covered_by.get(e.task, [])):
            covered += e.weight
    return MoatMetrics(
        patterns=used + confident_edges,
        skills=len(skills),
        mean_success=mean_success,
        coverage=covered / total if total else 0.0,
    )


def last_run(engine: Engine) -> dict[str, Any] | None:
    """The report of the latest learner run, if any."""
    with engine.connect() as conn:
        row = conn.execute(select(learner_runs.c.report).order_by(learner_runs.c.id.desc()).limit(1)).first()
    return None if row is None else dict(row.report)
