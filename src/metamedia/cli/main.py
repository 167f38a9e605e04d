"""`metamedia` commands: ingest, search, similar, serve, stats (+ sub-apps of other layers)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..errors import InvalidInput
from .common import console, emit_json, errors_to_exit, settings, state

if TYPE_CHECKING:
    from ..engine import Engine
    from ..ingest.ray_ingest import RayIngestOptions

app = typer.Typer(
    help="metamedia: semantic search and recommendations over a movie/TV catalog.", no_args_is_help=True
)


@app.callback()
def _global(
    data_dir: Annotated[Path | None, typer.Option(help="Data folder (METAMEDIA_DATA_DIR).")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Store of record URL (METAMEDIA_DATABASE_URL).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at debug level.")] = False,
) -> None:
    state.data_dir = data_dir
    state.database_url = database_url
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def _engine() -> Engine:
    # deferred: keeps `metamedia --help` and light commands from loading torch and the engine
    from ..engine import Engine

    return Engine(settings())


@app.command()
def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Catalog files: TMDB 5000, The Movies Dataset, MovieLens, JSON Lines."),
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    ray: Annotated[
        bool, typer.Option("--ray", help="Embed on a Ray cluster (docs/scale-out.md); resumes a stopped run.")
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray).")
    ] = None,
    ray_workers: Annotated[int, typer.Option(help="Embedding actors on Ray (0 = one per CPU).")] = 0,
    ray_batch_size: Annotated[int, typer.Option(help="Items per Ray batch (one store write).")] = 64,
    ray_cpus_per_worker: Annotated[float, typer.Option(help="CPUs each Ray embedding actor takes.")] = 1.0,
) -> None:
    """Ingest catalog files (format detected per file); re-ingesting the same files changes nothing."""
    ray_report = None
    with errors_to_exit():
        options = _ray_options(ray_address, ray_workers, ray_batch_size, ray_cpus_per_worker) if ray else None
        eng = _engine()
        try:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeRemainingColumn(),
                console=console,
                disable=json_out,
                transient=True,
            ) as bar:
                tasks: dict[str, Any] = {}

                def progress(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(stage, total=total)
                    bar.update(tasks[stage], completed=done, total=total)

                if ray:
                    report, ray_report = eng.ingest_ray(paths, options, progress=progress)
                else:
                    report = eng.ingest(paths, progress=progress)
        finally:
            eng.close()
    if json_out:
        emit_json({**report.to_dict(), **({"ray": ray_report.to_dict()} if ray_report else {})})
        return
    table = Table(title="ingest")
    for col in ("file", "format", "rows", "parsed", "rejected"):
        table.add_column(col)
    for f in report.files:
        table.add_row(f.path, f.format, str(f.rows), str(f.parsed), str(f.rejected))
    console.print(table)
    console.print(
        f"items: [green]{report.inserted} inserted[/green], {report.updated} updated, {report.unchanged} unchanged; "
        f"{report.skipped} id-only rows without a catalog item; [red]{report.rejected} rejected[/red]"
    )
    for reason, n in sorted(report.reject_reasons.items(), key=lambda kv: -kv[1])[:15]:
        console.print(f"  rejected {n:>6} × {reason}")
    if ray_report:
        r = ray_report
        console.print(
            f"ray: {r.embedded} embedded, {r.already_stored} already stored, of {r.pending} without a "
            f"vector; {r.workers} workers on {r.nodes} nodes, {r.seconds} s"
        )


def _ray_options(address: str | None, workers: int, batch_size: int, cpus: float) -> RayIngestOptions:
    """Checked before the store is opened: bad options change nothing."""
    # deferred: the Ray ingest options load only with `ingest --ray`
    from ..ingest.ray_ingest import RayIngestOptions

    options = RayIngestOptions(address=address, workers=workers, batch_size=batch_size, cpus_per_worker=cpus)
    options.validate()
    return options


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Free text, e.g. 'funny space movies'")],
    k: Annotated[int, typer.Option(help="Number of results (1..1000).")] = 10,
    genre: Annotated[list[str] | None, typer.Option(help="Required genre (repeatable).")] = None,
    year_min: Annotated[int | None, typer.Option()] = None,
    year_max: Annotated[int | None, typer.Option()] = None,
    rating_min: Annotated[float | None, typer.Option()] = None,
    runtime_max: Annotated[int | None, typer.Option()] = None,
    media_type: Annotated[str | None, typer.Option("--type", help="movie or tv")] = None,
    ef: Annotated[int | None, typer.Option(help="HNSW efSearch for this query.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search the catalog in natural language."""
    with errors_to_exit():
        eng = _engine()
        try:
            out = eng.search(
                query,
                k,
                genres=genre,
                year_min=year_min,
                year_max=year_max,
                rating_min=rating_min,
                runtime_max=runtime_max,
                media_type=media_type,
                ef=ef,
            )
        finally:
            eng.close()
    if json_out:
        emit_json(out)
        return
    _print_results(out["results"], f"{query!r} ({out['took_ms']} ms)")


@app.command()
def similar(
    item_id: Annotated[int, typer.Argument(help="Catalog item id")],
    k: Annotated[int, typer.Option(help="Number of results.")] = 10,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """More like this: the items closest to an item."""
    with errors_to_exit():
        eng = _engine()
        try:
            out = eng.similar(item_id, k)
        finally:
            eng.close()
    if json_out:
        emit_json(out)
        return
    _print_results(out["results"], f"like {out['item']['title']}")


@app.command()
def stats(json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Catalog and index statistics."""
    with errors_to_exit():
        eng = _engine()
        try:
            out = eng.stats()
            out["consistency"] = {
                k: (len(v) if isinstance(v, list) else v) for k, v in eng.check_index().items()
            }
        finally:
            eng.close()
    if json_out:
        emit_json(out)
    else:
        for key, value in out.items():
            console.print(f"[bold]{key}[/bold]: {value}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (METAMEDIA_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (METAMEDIA_PORT).")] = None,
    demo: Annotated[
        Path | None, typer.Option(help="Catalog to load on first start when the store is empty.")
    ] = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="Serve on Ray Serve: ingress, embedder and index shards.")
    ] = False,
    address: Annotated[
        str | None, typer.Option(help="With --ray: Ray cluster address; default starts a local Ray.")
    ] = None,
    shards: Annotated[int, typer.Option(help="With --ray: index shards S.", min=1, max=64)] = 2,
    replicas: Annotated[int, typer.Option(help="With --ray: replicas R of each shard.", min=1, max=64)] = 2,
    embedders: Annotated[int, typer.Option(help="With --ray: query-embedding replicas.", min=1, max=64)] = 1,
    ingresses: Annotated[int, typer.Option(help="With --ray: HTTP ingress replicas.", min=1, max=64)] = 1,
    workers: Annotated[
        int | None,
        typer.Option(help="Server processes behind the port, 0 = one per CPU core (METAMEDIA_WORKERS)."),
    ] = None,
) -> None:
    """Serve the HTTP API and web UI (with --ray: on a Ray cluster, PostgreSQL as the store)."""
    # deferred: keeps `metamedia --help` and light commands from loading uvicorn and FastAPI
    from ..api.workers import serve as serve_http

    with errors_to_exit():
        cfg = settings(host=host, port=port, demo_catalog=str(demo) if demo else None, workers=workers)
        if ray and workers is not None:
            raise InvalidInput("--workers is for the single-machine server; with --ray use --ingresses")
    logging.getLogger("metamedia").setLevel(logging.INFO)
    if not cfg.log_json:  # JSON logging installs its own handler at startup; one line per event
        logging.getLogger("metamedia").addHandler(logging.StreamHandler())
    if ray:
        # deferred: Ray loads only for serve --ray
        from ..distributed.run import serve_on_ray

        with errors_to_exit():
            serve_on_ray(
                cfg, address=address, shards=shards, replicas=replicas, embedders=embedders, ingresses=ingresses
            )
        return
    with errors_to_exit():
        serve_http(cfg)


def _print_results(results: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for col in ("id", "title", "year", "genres", "score", "reasons"):
        table.add_column(col)
    for r in results:
        table.add_row(
            str(r["id"]),
            r["title"],
            str(r["year"] or ""),
            ", ".join(r["genres"]),
            f"{r['score']:.3f}",
            "; ".join(r["reasons"]),
        )
    console.print(table)


def _mount_subapps() -> None:
    # deferred: keeps `metamedia --help` and light commands from loading every subcommand's dependencies
    from .backup import app as backup_app
    from .bandit import app as bandit_app
    from .bandit import eval_app
    from .keys import app as keys_app
    from .memory import app as memory_app
    from .memory import learn_command
    from .migrate import migrate_command

    app.add_typer(keys_app, name="keys", help="API keys: create, list, revoke.")
    app.add_typer(backup_app, name="backup", help="Backups of the store of record: create, restore, verify.")
    app.add_typer(
        memory_app, name="memory", help="Agent memory: strategies, episodes, skills, causal effects."
    )
    app.command("learn")(learn_command)

    app.add_typer(bandit_app, name="bandit", help="The bandit that picks the recommendation algorithm.")
    app.add_typer(eval_app, name="eval", help="Offline evaluations (recommenders, bandit replay).")
    # deferred: keeps `metamedia --help` and light commands from loading numpy-heavy evaluation code
    from .recommend import register as register_recommend

    register_recommend(app, eval_app)
    try:
        # deferred: the `mcp` package is the optional extra metamedia[mcp]
        from .mcp import mcp_command

        app.command("mcp")(mcp_command)
    except ImportError:  # pragma: no cover - the mcp extra is not installed
        pass
    app.command("migrate")(migrate_command)
    # deferred: like the other sub-apps (Ray itself loads only when a cluster command runs)
    from .cluster import app as cluster_app

    app.add_typer(cluster_app, name="cluster", help="metamedia on a Ray cluster: status, scale, reshard.")
    try:
        # deferred: keeps `metamedia --help` and light commands from loading faiss
        from ..vectors.cli import app as vectors_app

        app.add_typer(
            vectors_app, name="vectors", help="Vector collections: verify, repair, snapshot, backup..."
        )
    except ImportError:  # pragma: no cover - layer not built yet
        pass


_mount_subapps()


def main() -> None:
    app()
