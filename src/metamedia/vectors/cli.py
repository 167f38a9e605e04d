"""`metamedia vectors ...`: a thin typer adapter over VectorDB (list, describe, verify, repair,
compact, snapshot, backup, restore). Errors print one line on stderr and exit with the error's code."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy
import typer

from ..errors import MetamediaError
from ..settings import Settings
from .db import VectorDB

app = typer.Typer(
    help="Vector collections: list, describe, verify, repair, compact, snapshot, backup, restore."
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data folder (default: METAMEDIA_DATA_DIR or ./var)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
Name = Annotated[str | None, typer.Argument(help="Collection name; all collections when omitted.")]


@contextmanager
def _open(data_dir: Path | None) -> Iterator[VectorDB]:
    settings = Settings.from_env(data_dir=data_dir)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    engine = sqlalchemy.create_engine(settings.resolved_database_url)
    db = VectorDB(engine, Path(settings.data_dir))
    try:
        yield db
    finally:
        db.close(snapshot=False)
        engine.dispose()


def _run(
    data_dir: Path | None, as_json: bool, action: Callable[[VectorDB], Any], text: Callable[[Any], str]
) -> Any:
    try:
        with _open(data_dir) as db:
            result = action(db)
    except MetamediaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(exc.exit_code) from None
    typer.echo(json.dumps(result, indent=2, default=str) if as_json else text(result))
    return result


def _names(db: VectorDB, name: str | None) -> list[str]:
    return [name] if name else [c.name for c in db.list_collections()]


def _lines(rows: dict[str, Any], fmt: Callable[[str, Any], str]) -> str:
    return "\n".join(fmt(name, row) for name, row in rows.items()) or "(no collections)"


@app.command("list")
def list_collections(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """List collections with their configuration."""
    _run(
        data_dir,
        as_json,
        lambda db: [c.to_dict() for c in db.list_collections()],
        lambda rows: (
            "\n".join(f"{c['name']}\tdim={c['dim']}\t{c['metric']}\t{c['precision']}" for c in rows)
            or "(no collections)"
        ),
    )


@app.command()
def describe(
    name: Annotated[str, typer.Argument()], data_dir: DataDir = None, as_json: AsJson = False
) -> None:
    """Configuration and statistics of one collection."""
    _run(
        data_dir,
        as_json,
        lambda db: db.describe(name),
        lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()),
    )


@app.command()
def verify(name: Name = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Compare each index with the store of record; exit code 1 when any disagrees."""
    result = _run(
        data_dir,
        as_json,
        lambda db: {n: db.verify(n) for n in _names(db, name)},
        lambda rows: _lines(
            rows,
            lambda n, r: (
                f"{n}: {'ok' if r['ok'] else 'MISMATCH'} (store {r['store_count']}, index {r['index_count']}, "
                f"missing {r['missing']}, extra {r['extra']}, vector mismatches {len(r['vector_mismatches'])})"
            ),
        ),
    )
    if not all(r["ok"] for r in result.values()):
        raise typer.Exit(1)


@app.command()
def repair(name: Name = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Rebuild indexes from the store of record and snapshot them."""
    _run(
        data_dir,
        as_json,
        lambda db: {n: db.repair(n) for n in _names(db, name)},
        lambda rows: _lines(rows, lambda n, r: f"{n}: rebuilt, {r['index_count']} points, ok={r['ok']}"),
    )


@app.command()
def compact(name: Name = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Rebuild graphs without deleted points."""
    _run(
        data_dir,
        as_json,
        lambda db: {n: db.compact(n) for n in _names(db, name)},
        lambda rows: _lines(
            rows, lambda n, r: f"{n}: {r['count']} points, {r['removed_labels']} tombstones removed"
        ),
    )


@app.command()
def snapshot(name: Name = None, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Write snapshots now."""
    _run(
        data_dir,
        as_json,
        lambda db: {n: str(db.get_collection(n).snapshot()) for n in _names(db, name)},
        lambda rows: _lines(rows, lambda n, path: f"{n}: {path}"),
    )


@app.command()
def backup(
    dest: Annotated[Path, typer.Argument(help="Empty or new folder.")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Back up every collection (rows + snapshots, sha256-checksummed)."""
    _run(
        data_dir,
        as_json,
        lambda db: db.backup(dest),
        lambda m: f"backed up {len(m['collections'])} collection(s) to {dest}",
    )


@app.command()
def restore(
    src: Annotated[Path, typer.Argument(help="A folder written by `backup`.")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Restore the collections of a backup after verifying every checksum."""
    _run(data_dir, as_json, lambda db: db.restore(src), lambda r: f"restored: {', '.join(r['restored'])}")


def main() -> None:  # pragma: no cover - `python -m metamedia.vectors.cli`
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
