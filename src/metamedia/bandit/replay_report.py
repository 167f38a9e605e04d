"""Write the replay report: JSON figures, a markdown summary and the reward / regret PNG curves."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .replay import run_replay
from .replay_data import __doc__ as METHOD
from .replay_data import build_stream


def _plot(result: dict[str, Any], out_dir: Path) -> list[str]:
    # deferred: matplotlib (plots only) is slow to import and optional
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: after choosing the Agg backend

    curves: dict[str, np.ndarray] = result["curves"]
    steps = np.arange(1, result["steps"] + 1)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, curve in curves.items():
        ax.plot(steps, curve, label=name, linestyle="--" if name.startswith("fixed:") else "-")
    ax.set(
        xlabel="decision step",
        ylabel="cumulative reward",
        title="Bandit replay on MovieLens: cumulative reward",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "cumulative_reward.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, curve in curves.items():
        if not name.startswith("fixed:") or name == f"fixed:{result['best_fixed_arm']}":
            ax.plot(steps, result["best_curve"] - curve, label=name)
    ax.set(
        xlabel="decision step",
        ylabel=f"regret vs fixed:{result['best_fixed_arm']}",
        title="Regret against the best fixed arm in hindsight",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "regret.png", dpi=110)
    plt.close(fig)
    return ["cumulative_reward.png", "regret.png"]


def _markdown(result: dict[str, Any], seconds: float) -> str:
    lines = ["# Bandit replay on MovieLens latest-small", "", "## Method", "", (METHOD or "").strip(), ""]
    lines += [
        f"Steps: {result['steps']} from {result['users']} users; {result['seeds']} seeds per learning policy; "
        f"exploration floor {result['min_exploration']}; wall time {seconds:.0f} s.",
        "",
        "## Results",
        "",
        "| policy | total reward | mean reward | ratio to best fixed | final regret |",
        "|---|---|---|---|---|",
    ]
    for name, row in sorted(result["summary"].items(), key=lambda kv: -kv[1]["total_reward"]):
        lines.append(
            f"| {name} | {row['total_reward']:.1f} | {row['mean_reward']:.4f} | {row['ratio_to_best_fixed']:.3f} | {row['final_regret']:.1f} |"
        )
    test = result["thompson_vs_uniform"]
    served = result["served_vs_uniform"]["paired_t_over_users"]
    lines += [
        "",
        f"Served policy ({result['served_policy']}: Thompson sampling behind the guard {result['guard']}) vs "
        f"uniform, paired t-test over users: t = {served['t']:.2f}, p = {served['p_value']:.2e}. "
        f"Exploration share (steps not on the guard's incumbent): "
        + ", ".join(f"{k} {v:.3f}" for k, v in result["exploration_share"].items())
        + ".",
        "",
        f"Thompson vs uniform, paired t-test over users: t = {test['paired_t_over_users']['t']:.2f}, "
        f"p = {test['paired_t_over_users']['p_value']:.2e}; over seeds: p = {test['paired_t_over_seeds']['p_value']:.2e}.",
        "",
        "## Off-policy check (uniform logging, each fixed arm)",
        "",
        "| arm | replayed value | IPS [95% CI] | SNIPS [95% CI] | DR [95% CI] | ESS |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["ope_uniform_log"]:
        cells = [
            f"{row[e]['value']:.4f} [{row[e]['ci95'][0]:.4f}, {row[e]['ci95'][1]:.4f}]{'' if row[e]['covers'] else ' ✗'}"
            for e in ("ips", "snips", "dr")
        ]
        lines.append(
            f"| {row['arm']} | {row['replayed_value']:.4f} | " + " | ".join(cells) + f" | {row['ess']:.0f} |"
        )
    lines += ["", "![cumulative reward](cumulative_reward.png)", "", "![regret](regret.png)", ""]
    return "\n".join(lines)


def write_replay_report(
    data_dir: Path, out_dir: Path, *, seeds: int = 20, min_exploration: float = 0.05
) -> dict[str, Any]:
    """Build the stream, run every policy, write report.json / report.md / PNGs; returns the figures."""
    started = time.perf_counter()
    stream = build_stream(data_dir)
    result = run_replay(stream, seeds=seeds, min_exploration=min_exploration)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = _plot(result, out_dir)
    seconds = time.perf_counter() - started
    figures = {k: v for k, v in result.items() if k not in ("curves", "best_curve")}
    ts, best = figures["summary"]["thompson"], figures["best_fixed_arm"]
    served = figures["summary"][figures["served_policy"]]
    figures["goals"] = {
        "served_policy": figures["served_policy"],
        "served_ratio_to_best_fixed": served["ratio_to_best_fixed"],
        "served_at_least_0.95_best": served["ratio_to_best_fixed"] >= 0.95,
        "served_beats_uniform_p_below_0.05": figures["served_vs_uniform"]["paired_t_over_users"]["p_value"]
        < 0.05
        and served["total_reward"] > figures["summary"]["uniform"]["total_reward"],
        "thompson_ratio_to_best_fixed": ts["ratio_to_best_fixed"],
        "thompson_at_least_0.95_best": ts["ratio_to_best_fixed"] >= 0.95,
        "thompson_beats_uniform_p_below_0.05": figures["thompson_vs_uniform"]["paired_t_over_users"][
            "p_value"
        ]
        < 0.05
        and ts["total_reward"] > figures["summary"]["uniform"]["total_reward"],
        "ope_intervals_cover_replayed_value": all(
            row[e]["covers"] for row in figures["ope_uniform_log"] for e in ("ips", "snips", "dr")
        ),
        "best_fixed_arm": best,
    }
    figures["wall_seconds"] = seconds
    figures["files"] = ["report.json", "report.md", *files]
    (out_dir / "report.json").write_text(json.dumps(figures, indent=2))
    (out_dir / "report.md").write_text(_markdown(result, seconds))
    return figures
