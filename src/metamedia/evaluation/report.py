"""Writing an evaluation report: report.json, report.md and PNG plots of the metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable
from .report_served import goal_line, served_sections

METRICS = ("ndcg@10", "recall@20", "map@10", "coverage@10", "diversity@10", "novelty@10")
ROLE_COLOURS = {"baseline": "#8c8c8c", "metamedia": "#1f77b4"}


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write the three artefacts into ``out_dir`` (created if needed); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "report.json",
        "markdown": out_dir / "report.md",
        "metrics_plot": out_dir / "metrics.png",
        "tradeoff_plot": out_dir / "ndcg_vs_diversity.png",
    }
    paths["json"].write_text(json.dumps(report, indent=2, default=_plain) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_markdown(report), encoding="utf-8")
    _plot_metrics(report["algorithms"], paths["metrics_plot"])
    _plot_tradeoff(report["algorithms"], paths["tradeoff_plot"])
    return paths


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a markdown page: data, protocol, results table, goals."""
    data, lines = report["data"], []
    lines += ["# metamedia offline evaluation", ""]
    lines += [
        f"Ratings: `{data['ratings_csv']}` ({data['ratings']:,} ratings, {data['users']} users, "
        f"{data['items']:,} items; {data['dropped_unlinked_ratings']} ratings dropped as unlinked). "
        f"Seed {report['seed']}; whole run {report['seconds_total']} s.",
        "",
        f"Content vectors: {data['content_vectors']} ({data['vector_dim']}-d, "
        f"{data['items_with_vector']:,} of {data['items']:,} items have one).",
        "",
        "## Protocol",
        "",
    ]
    lines += [f"- **{key}**: {text}" for key, text in report["protocol"].items()]
    lines += [
        "",
        "| phase | fit interactions | candidate items | evaluated users | skipped users | "
        "held-out positives | unreachable positives |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, phase in report["phases"].items():
        lines.append(
            f"| {name} | {phase['fit_interactions']:,} | {phase['candidate_items']:,} | {phase['evaluated_users']} | "
            f"{phase['skipped_users_without_positive']} | {phase['held_out_positives']:,} | "
            f"{phase['unreachable_positives']:,} |"
        )
    lines += ["", "## Results (test split)", "", render_table(report["algorithms"]), ""]
    lines += ["## Goals", ""]
    for key, goal in report["goals"].items():
        if "numerator" not in goal:
            lines.append(goal_line(key, goal))
            continue
        verdict = "met" if goal["met"] else f"NOT met (short by {goal['gap_ndcg@10']:.4f} NDCG@10)"
        if goal["ratio"] is None:
            ratio = "undefined (the denominator has no hit)"
        else:
            low, high = goal["ratio_95ci"]
            ratio = f"**{goal['ratio']:.3f}x** (95% paired bootstrap {low:.3f}-{high:.3f})"
        lines.append(
            f"- **{key}**: {goal['numerator']} {goal['ndcg@10'][0]:.4f} / {goal['denominator']} "
            f"{goal['ndcg@10'][1]:.4f} = {ratio}; target {goal['target']:.2f}x: {verdict}."
        )
    if report.get("serving"):
        lines += ["", *served_sections(report["serving"])]
    if report.get("notes"):
        lines += ["", "## Notes", ""]
        lines += [f"- {note}" for note in report["notes"]]
    lines += ["", "## Chosen settings (validation NDCG@10)", ""]
    for row in report["algorithms"]:
        if row["validation_ndcg@10"] is not None:
            lines.append(f"- {row['name']}: `{json.dumps(row['params'])}` ({row['validation_ndcg@10']:.4f})")
    return "\n".join(lines) + "\n"


def render_table(rows: list[dict[str, Any]]) -> str:
    """One markdown row per algorithm with every metric, the role and the run time."""
    header = "| algorithm | role | " + " | ".join(METRICS) + " | seconds |"
    rule = "|---|---|" + "---:|" * len(METRICS) + "---:|"
    body = [
        f"| {row['name']} | {row['role']} | "
        + " | ".join(f"{row['test'][m]:.4f}" for m in METRICS)
        + f" | {row['seconds']} |"
        for row in rows
    ]
    return "\n".join([header, rule, *body])


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure drawn off-screen (no pyplot, no display needed)."""
    try:
        # deferred: matplotlib (plots only) is slow to import and optional
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise BackendUnavailable("evaluation plots need matplotlib: install metamedia[recommend]") from exc
    return Figure(figsize=(width, height), layout="constrained")


def _plot_metrics(rows: list[dict[str, Any]], path: Path) -> None:
    figure = _figure(15, 8)
    names = [row["name"] for row in rows]
    colours = [ROLE_COLOURS.get(row["role"], "#333333") for row in rows]
    for position, metric in enumerate(METRICS):
        axes = figure.add_subplot(2, 3, position + 1)
        axes.barh(names, [row["test"][metric] for row in rows], color=colours)
        axes.set_title(metric)
        axes.invert_yaxis()
        axes.tick_params(axis="y", labelsize=8)
    figure.suptitle("Test-split metrics (grey: baselines, blue: metamedia)")
    figure.savefig(path, dpi=110)


def _plot_tradeoff(rows: list[dict[str, Any]], path: Path) -> None:
    figure = _figure(7, 5)
    axes = figure.add_subplot()
    for position, row in enumerate(rows):
        x, y = row["test"]["diversity@10"], row["test"]["ndcg@10"]
        axes.scatter([x], [y], color=ROLE_COLOURS.get(row["role"], "#333333"))
        # Alternate label offsets so neighbouring points stay readable.
        offset = (4, 4) if position % 2 == 0 else (4, -10)
        axes.annotate(row["name"], (x, y), fontsize=7, xytext=offset, textcoords="offset points")
    axes.set_xlabel("intra-list diversity@10")
    axes.set_ylabel("NDCG@10")
    axes.set_title("Accuracy vs diversity (test split)")
    figure.savefig(path, dpi=110)


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and paths."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
