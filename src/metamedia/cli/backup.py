"""`metamedia backup create|restore|verify`: one-file, backend-neutral backups of the store of record."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from .common import console, emit_json, errors_to_exit, settings

app = typer.Typer(no_args_is_help=True, help="Backups of the whole store of record (SQLite or PostgreSQL).")

FILE_HELP = "Backup file (a .tar holding manifest.json and one gzipped JSON Lines file per table)."
JSON_HELP = "Machine-readable output."


@contextmanager
def _progress_bar(disabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A rich bar per table, fed by the (table, rows done, rows total) callback of the store layer."""
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console, disable=disabled
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def show(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=total)
            bar.update(tasks[table], completed=done, total=total)

        yield show


def _print_tables(title: str, rows: list[tuple[str, int, str]]) -> None:
    table = Table(title=title)
    for col in ("table", "rows", "checksum"):
        table.add_column(col)
    for name, count, checksum in rows:
        table.add_row(name, str(count), checksum[:16])
    console.print(table)


@app.command("create")
def create_command(
    file: Path = typer.Argument(..., help=FILE_HELP),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Store to back up; default: METAMEDIA_DATABASE_URL or the SQLite file."
    ),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, help="Rows read per batch."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Back up every metamedia table from one consistent snapshot into FILE (written atomically)."""
    # deferred: keeps `metamedia --help` and light commands from loading the store and alembic
    from ..store.backup import create_backup

    with errors_to_exit():
        url = database_url or settings().resolved_database_url
        with _progress_bar(as_json) as show:
            manifest = create_backup(url, file, batch_size=batch_size, progress=show)
    if as_json:
        emit_json({"file": str(file), "bytes": file.stat().st_size, **manifest.to_dict()})
        return
    _print_tables(f"backup {file}", [(t.name, t.rows, t.checksum) for t in manifest.tables])
    console.print(
        f"{manifest.rows} rows from {manifest.source_backend} (schema {manifest.schema_revision}), "
        f"{file.stat().st_size} bytes"
    )


@app.command("verify")
def verify_command(
    file: Path = typer.Argument(..., help=FILE_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Read the whole FILE and check every table against its manifest (rows, checksum, sha256)."""
    # deferred: keeps `metamedia --help` and light commands from loading the store and alembic
    from ..store.backup import verify_backup

    with errors_to_exit():
        with _progress_bar(as_json) as show:
            manifest = verify_backup(file, progress=show)
    if as_json:
        emit_json({"file": str(file), "ok": True, **manifest.to_dict()})
        return
    _print_tables(f"verified {file}", [(t.name, t.rows, t.checksum) for t in manifest.tables])
    console.print(f"[green]ok[/green]: {manifest.rows} rows, taken {manifest.created_at}")


@app.command("restore")
def restore_command(
    file: Path = typer.Argument(..., help=FILE_HELP),
    target: str = typer.Option(
        ..., "--to", help="Database URL to restore into (sqlite:///... or postgresql://...)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Delete every metamedia row already in the target before restoring."
    ),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, help="Rows inserted per batch."),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Verify FILE, restore it into an empty database (or --force), then prove every table's rows."""
    # deferred: keeps `metamedia --help` and light commands from loading the store and alembic
    from ..store.backup import restore_backup

    with errors_to_exit():
        with _progress_bar(as_json) as show:
            report = restore_backup(file, target, force=force, batch_size=batch_size, progress=show)
    verified = [
        {"table": c.name, "rows": c.target_rows, "checksum": c.target_checksum} for c in report.checks
    ]
    result: dict[str, Any] = {
        "file": str(file),
        "target_backend": report.target_backend,
        "source_backend": report.manifest.source_backend,
        "cleared": report.cleared,
        "verified": verified,
    }
    if as_json:
        emit_json(result)
        return
    _print_tables(f"restored {file}", [(c.name, c.target_rows, c.target_checksum) for c in report.checks])
    console.print(
        f"[green]verified[/green]: {report.manifest.rows} rows from {report.manifest.source_backend} "
        f"now in {report.target_backend}"
    )
