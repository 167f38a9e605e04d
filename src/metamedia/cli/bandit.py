"""`metamedia bandit stats|evaluate` and `metamedia eval bandit` (the MovieLens replay report)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import create_engine

from .common import console, emit_json, errors_to_exit, settings

app = typer.Typer(help="The contextual bandit that picks the recommendation algorithm.", no_args_is_help=True)
eval_app = typer.Typer(help="Offline evaluations.", no_args_is_help=True)


def _service():  # type: ignore[no-untyped-def]
    # deferred: keeps `metamedia --help` and light commands from loading the bandit and scipy
    from ..bandit.service import BanditService

    s = settings()
    if not s.database_url:
        Path(s.data_dir).mkdir(parents=True, exist_ok=True)
    return BanditService(create_engine(s.resolved_database_url))


@app.command()
def stats(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Arms, posterior means, selection shares and the policy version."""
    with errors_to_exit():
        report = _service().stats()
    if json_out:
        emit_json(report)
        return
    table = Table(
        title=f"bandit {report['policy_version']} ({report['decisions']} decisions, {report['rewarded']} rewarded)"
    )
    for col in ("arm", "active", "posterior mean", "selections", "share"):
        table.add_column(col)
    for arm in report["arms"]:
        table.add_row(
            arm["name"],
            str(arm["active"]),
            f"{arm['posterior_mean']:.4f}",
            str(arm["selections"]),
            f"{arm['selection_share']:.1%}",
        )
    console.print(table)


@app.command()
def evaluate(
    policy: Annotated[str, typer.Option(help="fixed, uniform or current.")] = "current",
    arm: Annotated[str | None, typer.Option(help="Arm of a fixed policy.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the latest N rewarded decisions.")] = None,
) -> None:
    """Off-policy estimates (IPS, SNIPS, DR) of a candidate policy from the decision log."""
    with errors_to_exit():
        emit_json(_service().evaluate({"policy": policy, "arm": arm}, limit=limit))


@eval_app.command("bandit")
def replay(
    data: Annotated[Path, typer.Option(help="Folder holding movielens-latest-small/.")] = Path(
        "../shared/data"
    ),
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("bench/results/bandit-replay"),
    seeds: Annotated[int, typer.Option(min=2, help="Seeds per learning policy.")] = 20,
) -> None:
    """Replay Thompson sampling, uniform, ε-greedy and fixed arms on MovieLens; write the report."""
    # deferred: keeps `metamedia --help` and light commands from loading the replay and matplotlib
    from ..bandit.replay_report import write_replay_report

    with errors_to_exit():
        figures = write_replay_report(data, out, seeds=seeds)
    emit_json(figures["goals"])
    console.print(f"report written to {out}/report.md")
