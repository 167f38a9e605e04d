"""What every command shares: settings from env + flags, JSON/rich output, error → exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..errors import MetamediaError
from ..settings import Settings

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


class State:
    """Options given before the command (global flags)."""

    data_dir: Path | None = None
    database_url: str | None = None


state = State()


def settings(**overrides: Any) -> Settings:
    return Settings.from_env(data_dir=state.data_dir, database_url=state.database_url, **overrides)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Named errors become a one-line message on stderr and the error's exit code."""
    try:
        yield
    except MetamediaError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(exc.exit_code) from None


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def run(fn: Callable[[], T]) -> T:
    with errors_to_exit():
        return fn()


class RateColumn(ProgressColumn):
    """Items per second of a progress task."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "")


@contextmanager
def progress_bar(disabled: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar per stage (done/total, rate, ETA) as a `Progress` callback."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, disable=disabled, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def show(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield show
