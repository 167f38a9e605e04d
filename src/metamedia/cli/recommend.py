"""`metamedia recommend USER`, `profile USER`, `import-ratings`, and `metamedia eval [recommend] --ratings ...`.

Mounted by ``register(app, eval_app)`` from cli/main.py.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from rich.table import Table

from ..errors import InvalidInput
from .common import console, emit_json, errors_to_exit, progress_bar, settings

if TYPE_CHECKING:
    from ..engine import Engine

DEFAULT_OUT = Path("eval-report")


def _engine() -> Engine:
    # deferred: keeps `metamedia --help` and light commands from loading torch and the engine
    from ..engine import Engine

    return Engine(settings())


def recommend_command(
    user: Annotated[str, typer.Argument(help="User id.")],
    k: Annotated[int, typer.Option("--k", "-k", help="How many items.")] = 10,
    algorithm: Annotated[
        str, typer.Option(help="auto|popularity|trending|content|itemknn|als|ease|graph|hybrid")
    ] = "auto",
    query: Annotated[str | None, typer.Option(help="Steer with a free-text query.")] = None,
    genre: Annotated[list[str] | None, typer.Option(help="Only these genres (repeatable).")] = None,
    rating_min: Annotated[float | None, typer.Option(help="Lowest vote average, 0-10.")] = None,
    runtime_max: Annotated[int | None, typer.Option(help="Longest runtime in minutes.")] = None,
    media_type: Annotated[str | None, typer.Option("--type", help="movie or tv.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Recommend items for a user, with the reason for each."""
    with errors_to_exit():
        eng = _engine()
        try:
            eng.recs.models.refresh(wait=True)
            result = eng.recs.recommend(
                user, k, algorithm=algorithm, query=query, genres=genre, rating_min=rating_min,
                runtime_max=runtime_max, media_type=media_type,
            )  # fmt: skip
        finally:
            eng.close()
    if json_out:
        emit_json(result)
        return
    title = f"{user}: {result['algorithm']}" + (f" (bandit arm {result['arm']})" if result["arm"] else "")
    table = Table(title=title + (" [cold start]" if result["cold_start"] else ""))
    for col in ("id", "title", "year", "genres", "score", "why"):
        table.add_column(col)
    for r in result["results"]:
        table.add_row(
            str(r["id"]), r["title"], str(r["year"] or ""), ", ".join(r["genres"]), f"{r['score']:.3f}",
            "; ".join(r["reasons"]),
        )  # fmt: skip
    console.print(table)


def profile_command(
    user: Annotated[str, typer.Argument(help="User id.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A user's learned taste: top genres, confidence, interaction counts, recent signals."""
    with errors_to_exit():
        eng = _engine()
        try:
            profile = eng.recs.profile(user)
        finally:
            eng.close()
    if json_out:
        emit_json(profile)
        return
    console.print(f"[bold]{user}[/bold]: {profile['interactions']} interactions {profile['counts']}, "
                  f"confidence {profile['confidence']:.2f}")  # fmt: skip
    for g in profile["top_genres"]:
        console.print(f"  {g['genre']:<18} {g['affinity']:+.2f}")


def import_ratings_command(
    ratings: Annotated[Path, typer.Argument(help="MovieLens ratings.csv.")],
    links: Annotated[Path | None, typer.Option(help="MovieLens links.csv (movieId -> tmdbId).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Import MovieLens ratings as interactions of users ml-<userId> (re-running imports nothing twice)."""
    with errors_to_exit():
        eng = _engine()
        try:
            with progress_bar(json_out) as show:
                report = eng.recs.import_ratings(ratings, links, progress=show)
            eng.recs.models.wait()
        finally:
            eng.close()
    if json_out:
        emit_json(report)
        return
    console.print(
        f"{report['imported']} imported, {report['duplicates']} duplicates, {report['unmatched']} unmatched "
        f"({report['users']} users, {report['items']} items) in {report['seconds']} s"
    )


def catalog_content(engine: Engine, links_csv: Path) -> tuple[dict[int, np.ndarray], dict[int, list[str]]]:
    """Hybrid vectors and genres of the catalog items, keyed by MovieLens movieId."""
    tmdb_to_movie: dict[int, int] = {}
    with open(links_csv, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (row.get("tmdbId") or "").strip():
                tmdb_to_movie.setdefault(int(row["tmdbId"]), int(row["movieId"]))
    indexed = {int(i) for i in engine.media.ids()}
    movie_of: dict[int, int] = {}
    genres: dict[int, list[str]] = {}
    for item in engine.store.iter_items():
        movie = item.movielens_id or (tmdb_to_movie.get(item.tmdb_id) if item.tmdb_id else None)
        if movie is None or item.id not in indexed or movie in genres:
            continue
        movie_of[item.id] = movie
        genres[movie] = list(item.genres)
    ids = sorted(movie_of)
    vectors = engine.media.get_vectors(ids) if ids else np.zeros((0, 1), np.float32)
    return {movie_of[i]: vectors[p] for p, i in enumerate(ids)}, genres


REPLAY_USERS = 200  # served-path replay sample: ~5 minutes on 2 cores (evaluation.served)
BANDIT_REPORT = Path("bench/results/bandit-replay/report.json")  # where `metamedia eval bandit` writes


def _read_report(path: Path) -> dict[str, Any] | None:
    """A JSON report if the file is there and readable (else None: the goal says it was not found)."""
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def run_eval(
    ratings: Path, links: Path, out: Path, seed: int, quick: bool, catalog_vectors: bool,
    replay_users: int = REPLAY_USERS, cold_seeds: tuple[int, ...] = (0, 1), bandit_report: Path = BANDIT_REPORT,
) -> dict[str, Any]:  # fmt: skip
    # deferred: keeps `metamedia --help` and light commands from loading the recommenders and scipy
    from ..evaluation.algorithms import default_algorithms
    from ..evaluation.harness import run_evaluation
    from ..scratch import scratch_engine

    vectors = genres = None
    bandit = (_read_report(bandit_report), str(bandit_report))
    if catalog_vectors:
        eng = _engine()
        try:
            vectors, genres = catalog_content(eng, links)
        finally:
            eng.close()
        if not vectors:
            raise InvalidInput("the catalog has no items linked to these ratings: ingest a catalog first, "
                               "or pass --no-catalog-vectors")  # fmt: skip
    if not (catalog_vectors and replay_users > 0 and not settings().database_url):
        return run_evaluation(
            ratings, links, item_vectors=vectors, item_genres=genres, seed=seed, out_dir=out,
            algorithms=default_algorithms(quick=quick), cold_seeds=cold_seeds, bandit_report=bandit,
        )  # fmt: skip
    with scratch_engine(settings()) as scratch:
        return run_evaluation(
            ratings, links, item_vectors=vectors, item_genres=genres, seed=seed, out_dir=out,
            algorithms=default_algorithms(quick=quick), replay_engine=scratch, replay_users=replay_users,
            cold_seeds=cold_seeds, bandit_report=bandit,
        )  # fmt: skip


def _summary(report: dict[str, Any], out: Path) -> None:
    table = Table(title=f"offline evaluation ({report['seconds_total']} s) -> {out}")
    for col in ("algorithm", "role", "ndcg@10", "recall@20", "coverage@10"):
        table.add_column(col)
    for row in report["algorithms"]:
        m = row["test"]
        table.add_row(
            row["name"],
            row["role"],
            f"{m['ndcg@10']:.4f}",
            f"{m['recall@20']:.4f}",
            f"{m['coverage@10']:.3f}",
        )
    console.print(table)
    # deferred: with the evaluation imports above, only `metamedia eval` loads the report helpers
    from ..evaluation.report_served import goal_line, served_sections

    for line in served_sections(report.get("serving") or {"config": {}}):
        console.print(line, markup=False)
    console.print("Goals:", markup=False)
    for key, goal in report["goals"].items():
        if "numerator" in goal:
            verdict = "met" if goal["met"] else "NOT met"
            console.print(
                f"- {key}: {goal['ratio'] or 0:.3f}x, target {goal['target']:.2f}x: {verdict}", markup=False
            )
        else:
            console.print(goal_line(key, goal), markup=False)


RatingsOpt = Annotated[Path | None, typer.Option("--ratings", help="MovieLens ratings.csv.")]
LinksOpt = Annotated[Path | None, typer.Option("--links", help="MovieLens links.csv.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Report folder (report.json, report.md, PNGs).")]
SeedOpt = Annotated[int, typer.Option(help="Random seed of the split and the models.")]
QuickOpt = Annotated[bool, typer.Option("--quick", help="Small hyper-parameter grids.")]
VectorsOpt = Annotated[
    bool,
    typer.Option("--catalog-vectors/--no-catalog-vectors", help="Content vectors from the catalog index."),
]


def eval_recommend(
    ratings: RatingsOpt = None, links: LinksOpt = None, out: OutOpt = DEFAULT_OUT, seed: SeedOpt = 0,
    quick: QuickOpt = False, catalog_vectors: VectorsOpt = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    replay_users: Annotated[
        int, typer.Option(help="Test users replayed through Engine.recommend on a copy of the store (0: skip).")
    ] = REPLAY_USERS,
    cold_seeds: Annotated[
        str, typer.Option(help="Comma-separated seeds of the cold-item and cold-user splits ('' skips them).")
    ] = "0,1",
) -> None:  # fmt: skip
    """Offline evaluation of every recommender and baseline on a temporal split of MovieLens ratings."""
    if ratings is None or links is None:
        raise typer.BadParameter("--ratings and --links are required")
    with errors_to_exit():
        seeds = tuple(int(x) for x in cold_seeds.split(",") if x.strip())
        report = run_eval(ratings, links, out, seed, quick, catalog_vectors, replay_users, seeds)
    if json_out:
        emit_json(report)
    else:
        _summary(report, out)


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Mount the commands on the root app and on the `eval` group (also as `metamedia eval --ratings ...`)."""
    app.command("recommend")(recommend_command)
    app.command("profile")(profile_command)
    app.command("import-ratings")(import_ratings_command)
    eval_app.command("recommend")(eval_recommend)

    def eval_default(
        ctx: typer.Context, ratings: RatingsOpt = None, links: LinksOpt = None, out: OutOpt = DEFAULT_OUT,
        seed: SeedOpt = 0, quick: QuickOpt = False, catalog_vectors: VectorsOpt = True,
    ) -> None:  # fmt: skip
        """Offline evaluations; `metamedia eval --ratings R --links L` runs the recommender report."""
        if ctx.invoked_subcommand is not None:
            return
        eval_recommend(ratings, links, out, seed, quick, catalog_vectors, False, REPLAY_USERS, "0,1")

    eval_app.callback(invoke_without_command=True)(eval_default)
