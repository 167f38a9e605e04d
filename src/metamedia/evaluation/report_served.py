"""Markdown for the served path, cold start and their goals (report.md and the CLI summary share it)."""

from __future__ import annotations

from typing import Any


def _ci(values: list[float] | None) -> str:
    return f"{values[0]:.3f}-{values[1]:.3f}" if values else "n/a"


def _mean(values: list[float]) -> str:
    return f"{values[0]:.4f} [{values[1]:.4f}, {values[2]:.4f}]"


def goal_line(key: str, goal: dict[str, Any]) -> str:
    """One goal of the served path or cold start, as a markdown bullet."""
    verdict = "met" if goal["met"] else "NOT met"
    if "ratio_per_seed" in goal:
        per_seed = ", ".join(
            f"{r:.3f}x ({_ci(ci)})" if r is not None else "undefined"
            for r, ci in zip(goal["ratio_per_seed"], goal["ratio_95ci_per_seed"], strict=True)
        )
        return f"- **{key}**: per seed {per_seed}; target {goal['target']:.2f}x on every seed: {verdict}."
    if goal.get("ratio") is None:
        return f"- **{key}**: {goal.get('note', 'undefined')}; target {goal['target']:.2f}x: {verdict}."
    if "p_vs_uniform" in goal:
        return (
            f"- **{key}**: {goal['policy']} at **{goal['ratio']:.3f}x** the best fixed arm ({goal['best_fixed_arm']}), "
            f"better than uniform with p = {goal['p_vs_uniform']:.2g} ({goal['steps']} steps x {goal['seeds']} "
            f"seeds, {goal['source']}); target {goal['target']:.2f}x and p < {goal['p_target']}: {verdict}."
        )
    ndcg = goal.get("ndcg@10", [0.0, 0.0])
    interval = f" (95% paired bootstrap {_ci(goal['ratio_95ci'])})" if goal.get("ratio_95ci") else ""
    return (
        f"- **{key}**: {ndcg[0]:.4f} / {ndcg[1]:.4f} = **{goal['ratio']:.3f}x**{interval}; "
        f"target {goal['target']:.2f}x: {verdict}."
    )


def served_sections(serving: dict[str, Any]) -> list[str]:
    """The served configuration, the served-path replay and the cold-start tables."""
    lines = ["## Served path", "", f"Configuration (recommend.serving.SERVING): `{serving['config']}`", ""]
    replay = serving.get("served_replay")
    if replay:
        lines += [
            f"Replay through `Engine.recommend` (default settings) for {replay['users']} sampled test users "
            f"({replay['fed_interactions']:,} interactions fed through `record_interaction`, "
            f"{replay['requests_while_feeding']} requests while feeding, p50 {replay['request_ms_p50']} ms, "
            f"p99 {replay['request_ms_p99']} ms; arms served at the split point {replay['served_arms']}; "
            f"{replay['seconds']} s): served NDCG@10 {replay['served_ndcg@10']:.4f} vs offline best "
            f"{replay['offline_best_ndcg@10_same_users']:.4f} on the same users.",
            "",
        ]
        if "ndcg@10_by_arm" in replay:
            by_arm = ", ".join(
                f"{arm} {v[0]:.4f} vs {v[1]:.4f}" for arm, v in replay["ndcg@10_by_arm"].items()
            )
            lines += [
                f"By the arm that served the scored list (served vs offline best): {by_arm}. Share of served "
                f"titles outside the ratings data (never a hit): {replay['served_outside_ratings_share']:.1%}.",
                "",
            ]
    else:
        lines += ["Served-path replay: not run (needs the catalog on an SQLite store).", ""]
    if serving.get("cold_items"):
        lines += [
            "## Cold items (full ranking among items nobody rated in training)",
            "",
            "| seed | new items | users | content only NDCG@10 [95% CI] | served (content->CF map) NDCG@10 "
            "[95% CI] | ratio [95% CI] | served map | validation would choose |",
            "|---|---:|---:|---|---|---|---|---|",
        ]
        for r in serving["cold_items"]:
            ratio = f"{r['ratio']:.2f}x [{_ci(r['ratio_95ci'])}]" if r["ratio"] else "n/a"
            lines.append(
                f"| {r['seed']} | {r['cold_items']} | {r['evaluated_users']} | {_mean(r['content_only_ndcg@10'])} | "
                f"{_mean(r['content_map_ndcg@10'])} | {ratio} | `{r['params']}` | "
                f"`{r.get('validation_choice', r['params'])}` |"
            )
        lines.append("")
    if serving.get("cold_users"):
        lines += [
            "## Cold users (first n ratings as history, full ranking)",
            "",
            "| seed | n | users | popularity NDCG@10 [95% CI] | served NDCG@10 [95% CI] | ratio [95% CI] |",
            "|---|---:|---:|---|---|---|",
        ]
        for r in serving["cold_users"]:
            for row in r["rows"]:
                ratio = f"{row['ratio']:.3f}x [{_ci(row['ratio_95ci'])}]" if row["ratio"] else "n/a"
                lines.append(
                    f"| {r['seed']} | {row['history']} | {row['users']} | {_mean(row['popularity_ndcg@10'])} | "
                    f"{_mean(row['served_ndcg@10'])} | {ratio} |"
                )
        lines += [""]
        for r in serving["cold_users"]:
            chosen = {n: (c["popularity"], c["recent"]) for n, c in r["blend_chosen_on_validation"].items()}
            lines.append(
                f"- seed {r['seed']}: served blend per history length (popularity, recent likes with a "
                f"{r['recent_half_life_days']:g}-day half-life) "
                f"{ {n: (v, r['recent_popularity_blend'].get(n, 0.0)) for n, v in r['popularity_blend'].items()} }, "
                f"validation users would choose {chosen}"
            )
        lines.append("")
    return lines
