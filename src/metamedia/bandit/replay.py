"""Replay on real MovieLens data: Thompson sampling against uniform, ε-greedy and each fixed arm.

The stream (see ``replay_data``) holds every arm's reward at every step, so a policy's run
is a walk over the same steps choosing one arm each time: cheap enough to repeat with many
seeds. Reported: mean cumulative reward and regret against the best fixed arm in hindsight
(PNG curves), a paired t-test of Thompson sampling against uniform across users (each
user's mean reward over seeds), and the off-policy check: a uniform-logging run is
evaluated with IPS / SNIPS / DR for every fixed arm, whose true value on the stream is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy import stats

from .context import ContextBucketer
from .guard import GuardedThompsonPolicy, GuardSettings
from .ope import LoggedDecision, off_policy_report
from .policy import EpsilonGreedyPolicy, FixedArmPolicy, ThompsonPolicy, UniformPolicy
from .replay_data import ReplayStream

CHOSEN_BUCKETS = ("experience", "session")
SERVED_POLICY = "thompson-guarded"  # what BanditService.choose runs: Thompson sampling behind the guard
# The guard's default arm in the replay: among the replay's arms, the one `metamedia eval` ranks
# best on validation (EASE); the server's default is the fused model, which is not a replay arm.
REPLAY_GUARD = GuardSettings(default_arm="ease")


class LearningPolicy(Protocol):
    name: str

    def sample(self, bucket: str, arms: list[str], rng: np.random.Generator) -> int: ...

    def update(self, bucket: str, arm: str, reward: float) -> None: ...


@dataclass(frozen=True)
class PolicySpec:
    name: str
    bucketer: ContextBucketer
    factory: Any  # () -> LearningPolicy


def policy_specs(min_exploration: float = 0.05) -> list[PolicySpec]:
    chosen = ContextBucketer(CHOSEN_BUCKETS)
    return [
        PolicySpec("thompson", chosen, lambda: ThompsonPolicy(min_exploration=min_exploration)),
        PolicySpec(
            "thompson-global", ContextBucketer(()), lambda: ThompsonPolicy(min_exploration=min_exploration)
        ),
        PolicySpec(
            "thompson-rich",
            ContextBucketer(("experience", "session", "daypart", "weekend", "genre")),
            lambda: ThompsonPolicy(min_exploration=min_exploration),
        ),
        PolicySpec(
            SERVED_POLICY,
            chosen,
            lambda: GuardedThompsonPolicy(REPLAY_GUARD, min_exploration=min_exploration),
        ),
        PolicySpec(
            "thompson-guarded-global",
            ContextBucketer(()),
            lambda: GuardedThompsonPolicy(REPLAY_GUARD, min_exploration=min_exploration),
        ),
        PolicySpec(
            "thompson-guarded-rich",
            ContextBucketer(("experience", "session", "daypart", "weekend", "genre")),
            lambda: GuardedThompsonPolicy(REPLAY_GUARD, min_exploration=min_exploration),
        ),
        PolicySpec("epsilon-greedy", chosen, lambda: EpsilonGreedyPolicy(0.1)),
        PolicySpec("uniform", chosen, UniformPolicy),
    ]


def run_policy(
    stream: ReplayStream, policy: LearningPolicy, bucketer: ContextBucketer, seed: int
) -> np.ndarray:
    """The arm chosen at every step (rewards are revealed right after each choice)."""
    rng = np.random.default_rng(seed)
    arms = list(stream.arms)
    chosen = np.empty(len(stream.contexts), dtype=np.int64)
    for step, context in enumerate(stream.contexts):
        bucket = bucketer.bucket(context)
        arm = policy.sample(bucket, arms, rng)
        policy.update(bucket, arms[arm], float(stream.rewards[step, arm]))
        chosen[step] = arm
    return chosen


def ope_check(stream: ReplayStream, bucketer: ContextBucketer, seed: int) -> list[dict[str, Any]]:
    """Log a uniform run, then estimate each fixed arm's value from it and compare with the truth."""
    chosen = run_policy(stream, UniformPolicy(), bucketer, seed)
    arms = tuple(stream.arms)
    log = [
        LoggedDecision(bucketer.bucket(c), arms, arms[a], 1.0 / len(arms), float(stream.rewards[i, a]))
        for i, (c, a) in enumerate(zip(stream.contexts, chosen, strict=True))
    ]
    out = []
    for j, arm in enumerate(arms):
        report = off_policy_report(log, FixedArmPolicy(arm))
        truth = float(stream.rewards[:, j].mean())
        row: dict[str, Any] = {"arm": arm, "replayed_value": truth, "ess": report.effective_sample_size}
        for name in ("ips", "snips", "dr"):
            est = getattr(report, name)
            row[name] = {
                "value": est.value,
                "ci95": [est.ci_low, est.ci_high],
                "covers": est.ci_low <= truth <= est.ci_high,
            }
        out.append(row)
    return out


def run_replay(stream: ReplayStream, *, seeds: int = 20, min_exploration: float = 0.05) -> dict[str, Any]:
    """Every policy over the stream with ``seeds`` seeds; returns curves and the summary figures."""
    n = len(stream.contexts)
    fixed_totals = stream.rewards.sum(axis=0)
    best = int(np.argmax(fixed_totals))
    best_curve = np.cumsum(stream.rewards[:, best])
    curves: dict[str, np.ndarray] = {
        f"fixed:{a}": np.cumsum(stream.rewards[:, j]) for j, a in enumerate(stream.arms)
    }
    totals: dict[str, list[float]] = {}
    per_user: dict[str, np.ndarray] = {}
    users, user_index = np.unique(stream.users, return_inverse=True)
    steps_per_user = np.bincount(user_index)
    shares: dict[str, list[float]] = {}
    exploration: dict[str, float] = {}
    for spec in policy_specs(min_exploration):
        runs = []
        user_sums = np.zeros(len(users))
        explored = 0
        for seed in range(seeds):
            policy = spec.factory()
            chosen = run_policy(stream, policy, spec.bucketer, seed)
            explored += int(getattr(policy, "explored", 0))
            rewards = stream.rewards[np.arange(n), chosen]
            runs.append(np.cumsum(rewards))
            user_sums += np.bincount(user_index, weights=rewards, minlength=len(users))
            if seed == 0:
                shares[spec.name] = (np.bincount(chosen, minlength=len(stream.arms)) / n).tolist()
        if isinstance(policy, GuardedThompsonPolicy):
            exploration[spec.name] = explored / (n * seeds)
        curves[spec.name] = np.mean(runs, axis=0)
        totals[spec.name] = [float(r[-1]) for r in runs]
        per_user[spec.name] = user_sums / seeds / steps_per_user
    seed_test = stats.ttest_rel(totals["thompson"], totals["uniform"])
    user_test = stats.ttest_rel(per_user["thompson"], per_user["uniform"])
    served_seed = stats.ttest_rel(totals[SERVED_POLICY], totals["uniform"])
    served_user = stats.ttest_rel(per_user[SERVED_POLICY], per_user["uniform"])
    summary = {
        name: {
            "total_reward": float(np.mean(vals)),
            "total_reward_sd": float(np.std(vals, ddof=1)),
            "mean_reward": float(np.mean(vals)) / n,
            "ratio_to_best_fixed": float(np.mean(vals)) / float(fixed_totals[best]),
            "final_regret": float(fixed_totals[best] - np.mean(vals)),
        }
        for name, vals in totals.items()
    }
    for j, arm in enumerate(stream.arms):
        summary[f"fixed:{arm}"] = {
            "total_reward": float(fixed_totals[j]),
            "mean_reward": float(fixed_totals[j]) / n,
            "ratio_to_best_fixed": float(fixed_totals[j] / fixed_totals[best]),
            "final_regret": float(fixed_totals[best] - fixed_totals[j]),
        }
    return {
        "steps": n,
        "users": len(users),
        "seeds": seeds,
        "arms": list(stream.arms),
        "best_fixed_arm": stream.arms[best],
        "min_exploration": min_exploration,
        "summary": summary,
        "selection_shares_seed0": {k: dict(zip(stream.arms, v, strict=True)) for k, v in shares.items()},
        "thompson_vs_uniform": {
            "paired_t_over_users": {
                "t": float(user_test.statistic),
                "p_value": float(user_test.pvalue),
                "n": len(users),
            },
            "paired_t_over_seeds": {
                "t": float(seed_test.statistic),
                "p_value": float(seed_test.pvalue),
                "n": seeds,
            },
        },
        "served_policy": SERVED_POLICY,
        "guard": {
            "default_arm": REPLAY_GUARD.default_arm,
            "tolerance": REPLAY_GUARD.tolerance,
            "quantile": REPLAY_GUARD.quantile,
            "min_pulls": REPLAY_GUARD.min_pulls,
            "floor": REPLAY_GUARD.floor,
        },
        "exploration_share": exploration,
        "served_vs_uniform": {
            "paired_t_over_users": {
                "t": float(served_user.statistic),
                "p_value": float(served_user.pvalue),
                "n": len(users),
            },
            "paired_t_over_seeds": {
                "t": float(served_seed.statistic),
                "p_value": float(served_seed.pvalue),
                "n": seeds,
            },
        },
        "ope_uniform_log": ope_check(stream, ContextBucketer(CHOSEN_BUCKETS), seed=12345),
        "curves": {k: v for k, v in curves.items()},
        "best_curve": best_curve,
    }
