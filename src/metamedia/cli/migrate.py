"""`metamedia migrate --from URL --to URL`: copy a database to another backend, then verify it."""

from __future__ import annotations

from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from .common import console, emit_json, errors_to_exit


def migrate_command(
    source: str = typer.Option(
        ..., "--from", help="Database URL to copy from (sqlite:///... or postgresql://...)."
    ),
    target: str = typer.Option(
        ..., "--to", help="Database URL to copy into; must be empty or a resumed copy."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be copied; write nothing."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, help="Rows per committed batch."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Copy every table in batches (resumable: re-run the same command after an interruption),
    then verify row counts, per-table checksums and sampled vectors; exit non-zero on any difference."""
    # deferred: keeps `metamedia --help` and light commands from loading the store and alembic
    from ..store.migrate import migrate, verify

    with errors_to_exit():
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def show(table: str, copied: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = bar.add_task(table, total=total)
                bar.update(tasks[table], completed=copied)

            report = migrate(source, target, batch_size=batch_size, dry_run=dry_run, progress=show)
        checks = [] if dry_run else verify(source, target)
    result: dict[str, Any] = {
        "dry_run": dry_run,
        "tables": [vars(t) for t in report.tables],
        "verified": [{"table": c.name, "rows": c.target_rows, "checksum": c.target_checksum} for c in checks],
    }
    if as_json:
        emit_json(result)
        return
    table = Table(title="migrate (dry run)" if dry_run else "migrate")
    for col in ("table", "source rows", "target rows", "copied now", "verified"):
        table.add_column(col)
    ok = {c.name for c in checks if c.ok}
    for t in report.tables:
        table.add_row(
            t.name,
            str(t.source_rows),
            str(t.target_rows),
            str(t.copied),
            "-" if dry_run else ("yes" if t.name in ok else "NO"),
        )
    console.print(table)
