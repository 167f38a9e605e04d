"""`metamedia memory ...` (strategies, episodes, skills, causal, history, runs) and `metamedia learn`.

Every command prints JSON (the MemoryFacade dicts), so the output can be piped into other tools.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import emit_json, errors_to_exit, settings

app = typer.Typer(help="Agent memory: strategies, episodes, skills, causal effects.", no_args_is_help=True)
strategies_app = typer.Typer(help="ReasoningBank strategies.", no_args_is_help=True)
episodes_app = typer.Typer(help="Reflexion episodes.", no_args_is_help=True)
skills_app = typer.Typer(help="Consolidated skills.", no_args_is_help=True)
causal_app = typer.Typer(help="Causal effects and the causal graph.", no_args_is_help=True)
app.add_typer(strategies_app, name="strategies")
app.add_typer(episodes_app, name="episodes")
app.add_typer(skills_app, name="skills")
app.add_typer(causal_app, name="causal")

K = Annotated[int, typer.Option(min=1, max=100, help="How many results.")]


@contextmanager
def _facade() -> Iterator[Any]:
    # deferred: keeps `metamedia --help` and light commands from loading torch and the engine
    from ..engine import Engine
    from ..memory.facade import MemoryFacade

    engine = Engine(settings())
    try:
        yield MemoryFacade(engine)
    finally:
        engine.close()


def _run(call: Callable[[Any], Any]) -> None:
    with errors_to_exit(), _facade() as memory:
        result = call(memory)
    emit_json(result)


# -- strategies ---------------------------------------------------------------------------------
@strategies_app.command("add")
def strategies_add(
    title: Annotated[str, typer.Argument(help="Strategy title (its family id is derived from it).")],
    task_type: Annotated[str, typer.Option(help="Task the strategy serves, e.g. recommendation.")],
    description: Annotated[str, typer.Option(help="What it is for and how it works.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="Context tag (repeatable).")] = None,
    heuristic: Annotated[list[str] | None, typer.Option(help="Heuristic (repeatable).")] = None,
    constraint: Annotated[list[str] | None, typer.Option(help="Constraint (repeatable).")] = None,
) -> None:
    """Store a new strategy."""
    _run(lambda m: m.strategy_store(title, description, task_type, tag, heuristic, constraint))


@strategies_app.command("search")
def strategies_search(
    query: Annotated[str, typer.Argument(help="What the strategy should be good for.")],
    task: Annotated[str | None, typer.Option(help="Only strategies of this task type.")] = None,
    k: K = 5,
    min_confidence: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.0,
) -> None:
    """Strategies ranked by similarity, smoothed success and context."""
    _run(lambda m: m.strategy_search(query, task_type=task, k=k, min_confidence=min_confidence))


@strategies_app.command("outcome")
def strategies_outcome(
    strategy_id: Annotated[str, typer.Argument()],
    success: Annotated[bool, typer.Option("--success/--failure", help="How the use went.")],
    reward: Annotated[float, typer.Option(help="Reward of this use.")] = 0.0,
) -> None:
    """Count one use of a strategy with its outcome."""
    _run(lambda m: m.strategy_record_outcome(strategy_id, success, reward))


@strategies_app.command("history")
def strategies_history(strategy_id: Annotated[str, typer.Argument()]) -> None:
    """A strategy version, its lineage and its audit trail."""
    _run(lambda m: m.strategy_history(strategy_id))


# -- episodes, skills ---------------------------------------------------------------------------
@episodes_app.command("search")
def episodes_search(
    query: Annotated[str, typer.Argument()],
    only: Annotated[str, typer.Option(help="all, failures or successes.")] = "all",
    min_reward: Annotated[float | None, typer.Option()] = None,
    since: Annotated[str | None, typer.Option(help="Epoch seconds or ISO-8601.")] = None,
    until: Annotated[str | None, typer.Option(help="Epoch seconds or ISO-8601.")] = None,
    user: Annotated[str | None, typer.Option(help="Only this user's episodes.")] = None,
    k: K = 5,
) -> None:
    """Episodes similar to a query, filtered by outcome, reward and time window."""
    _run(
        lambda m: m.reflexion_search(
            query, only=only, min_reward=min_reward, since=since, k=k, until=until, user_id=user
        )
    )


@episodes_app.command("analyze")
def episodes_analyze(episode_id: Annotated[str, typer.Argument()], k: K = 5) -> None:
    """Reflexion failure analysis of one episode."""
    _run(lambda m: m.reflexion_analyze(episode_id, k=k))


@skills_app.command("search")
def skills_search(task: Annotated[str, typer.Argument()], k: K = 5) -> None:
    """Skills for a task, with success rates."""
    _run(lambda m: m.skill_search(task, k=k))


# -- causal -------------------------------------------------------------------------------------
@causal_app.command("effects")
def causal_effects(
    user: Annotated[str | None, typer.Option(help="Also this user's shrunk effects.")] = None,
    top: K = 10,
) -> None:
    """Learnt effects of ranking features on completion."""
    _run(lambda m: m.causal_effects(user_id=user, top=top))


@causal_app.command("paths")
def causal_paths(
    outcome: Annotated[str, typer.Argument(help='"completion" or "type:label".')],
    max_depth: Annotated[int, typer.Option(min=1, max=5)] = 5,
    k: K = 10,
) -> None:
    """The most confident causal chains ending at an outcome."""
    _run(lambda m: m.causal_paths(outcome, max_depth=max_depth, k=k))


@causal_app.command("causes")
def causal_causes(
    event: Annotated[str, typer.Argument(help='Event type, e.g. "outcome".')], k: K = 10
) -> None:
    """The strongest causes of events of a type."""
    _run(lambda m: m.causal_causes(event, k=k))


# -- audit and learner --------------------------------------------------------------------------
@app.command("history")
def history(
    memory_id: Annotated[str, typer.Argument(help='Strategy, episode or skill id, or "constraint:<n>".')],
) -> None:
    """The audit trail of any memory."""
    _run(lambda m: m.history(memory_id))


@app.command("runs")
def runs(limit: K = 20) -> None:
    """Recent learner runs, newest first."""
    _run(lambda m: m.learner_runs(limit=limit))


def learn_command(
    movielens: Annotated[
        Path | None,
        typer.Option(help="Learn causal effects from this MovieLens folder (ratings.csv, movies.csv)."),
    ] = None,
    max_interactions: Annotated[
        int | None, typer.Option(min=1, help="Use only the first N interactions.")
    ] = None,
) -> None:
    """Run the nightly learner once: merge duplicates, consolidate skills, re-estimate causal effects,
    evolve failing strategies; prints the report."""
    _run(lambda m: m.learn(movielens=movielens, max_interactions=max_interactions))
