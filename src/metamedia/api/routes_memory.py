"""HTTP adapter of agent memory: strategies, episodes, skills, causal effects, the learner, audit trails.

`read` scope for GETs, `write` for POSTs, `admin` for POST /admin/learn. Every route is a thin call
into MemoryFacade; named errors become their status codes through the app's error handlers. A key
bound to a user reads only that user's episodes, effects and audit trails (see metamedia/access.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from ..access import confine_user, ensure_memory_visible
from ..memory.facade import MAX_K, MemoryFacade
from .auth import Principal, require

router = APIRouter(tags=["memory"])
_read = require("read")
READ = [Depends(_read)]
WRITE = [Depends(require("write"))]
Reader = Annotated[Principal, Depends(_read)]

Short = Annotated[str, Field(min_length=1, max_length=300)]
Long = Annotated[str, Field(max_length=5000)]
Items = Annotated[list[Annotated[str, Field(max_length=500)]], Field(max_length=50)]
Id = Annotated[str, Field(min_length=1, max_length=120)]
PathId = Annotated[str, PathParam(min_length=1, max_length=120)]
K = Annotated[int, Query(ge=1, le=MAX_K)]
Unit = Annotated[FiniteFloat, Field(ge=0.0, le=1.0)]


def facade(request: Request) -> MemoryFacade:
    return MemoryFacade(request.app.state.engine)


Memory = Annotated[MemoryFacade, Depends(facade)]


class StrategyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Short
    description: Long = ""
    task_type: Short
    tags: Items = Field(default_factory=list)
    heuristics: Items = Field(default_factory=list)
    constraints: Items = Field(default_factory=list)


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    success: bool
    reward: Annotated[FiniteFloat, Field(ge=-1000.0, le=1000.0)]


class EvolveIn(BaseModel):
    """The fields to change (any strategy field but family_id; `params` merges) and why."""

    model_config = ConfigDict(extra="forbid")
    changes: dict[str, Any] = Field(min_length=1, max_length=20)
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    evidence: dict[str, Any] = Field(default_factory=dict, max_length=50)


class EpisodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session_id: Annotated[str, Field(max_length=120)] = ""
    task: Short
    context: dict[str, Any] = Field(default_factory=dict, max_length=20)
    recommended: list[Annotated[str, Field(max_length=120)]] = Field(default_factory=list, max_length=200)
    predicted: Unit
    actual: Unit
    reward: Annotated[FiniteFloat, Field(ge=-1000.0, le=1000.0)]
    success: bool
    critique: Long | None = None
    user_id: Annotated[str, Field(max_length=120)] = ""
    action: Annotated[str, Field(min_length=1, max_length=40)] = "play"
    item_id: Annotated[str, Field(max_length=120)] | None = None
    item: dict[str, Any] = Field(default_factory=dict, max_length=30)
    factors: dict[Annotated[str, Field(max_length=60)], Unit] = Field(default_factory=dict, max_length=30)
    strategy_ids: list[Id] = Field(default_factory=list, max_length=30)


# -- strategies ---------------------------------------------------------------------------------
@router.post("/memory/strategies", status_code=201, dependencies=WRITE)
def store_strategy(body: StrategyIn, memory: Memory) -> dict[str, Any]:
    """Store a new strategy (version 1); 409 when a strategy with that title's family exists."""
    return memory.strategy_store(
        body.title, body.description, body.task_type, body.tags, body.heuristics, body.constraints
    )


@router.get("/memory/strategies/search", dependencies=READ)
def search_strategies(
    memory: Memory,
    q: Annotated[str, Query(min_length=1, max_length=1000)],
    task: Annotated[str | None, Query(max_length=300)] = None,
    k: K = 5,
    min_confidence: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
) -> list[dict[str, Any]]:
    """Active strategies for a query, ranked by similarity, smoothed success and context."""
    return memory.strategy_search(q, task_type=task, k=k, min_confidence=min_confidence)


@router.post("/memory/strategies/{strategy_id}/outcome", dependencies=WRITE)
def strategy_outcome(strategy_id: PathId, body: OutcomeIn, memory: Memory) -> dict[str, Any]:
    """Count one use of a strategy with its outcome."""
    return memory.strategy_record_outcome(strategy_id, body.success, body.reward)


@router.post("/memory/strategies/{strategy_id}/evolve", status_code=201, dependencies=WRITE)
def evolve_strategy(strategy_id: PathId, body: EvolveIn, memory: Memory) -> dict[str, Any]:
    """Create the next version of a strategy; the old one is kept, superseded."""
    return memory.strategy_evolve(strategy_id, body.changes, body.reason, body.evidence)


@router.get("/memory/strategies/{strategy_id}/history", dependencies=READ)
def strategy_history(strategy_id: PathId, memory: Memory) -> dict[str, Any]:
    """A strategy version, its lineage and its audit trail."""
    return memory.strategy_history(strategy_id)


# -- episodes -----------------------------------------------------------------------------------
@router.post("/memory/episodes", status_code=201, dependencies=WRITE)
def store_episode(body: EpisodeIn, memory: Memory) -> dict[str, Any]:
    """Store one recommendation episode (failures get a critique)."""
    return memory.reflexion_store(
        body.session_id, body.task, body.context, body.recommended, body.predicted, body.actual,
        body.reward, body.success, body.critique, user_id=body.user_id, action=body.action,
        item_id=body.item_id, item=body.item, factors=body.factors, strategy_ids=body.strategy_ids,
    )  # fmt: skip


@router.get("/memory/episodes/search")
def search_episodes(
    memory: Memory,
    principal: Reader,
    q: Annotated[str, Query(min_length=1, max_length=1000)],
    only: Literal["all", "failures", "successes"] = "all",
    min_reward: Annotated[float | None, Query(ge=-1000.0, le=1000.0)] = None,
    since: Annotated[str | None, Query(max_length=40, description="epoch seconds or ISO-8601")] = None,
    until: Annotated[str | None, Query(max_length=40, description="epoch seconds or ISO-8601")] = None,
    user_id: Annotated[str | None, Query(max_length=120)] = None,
    k: K = 5,
) -> list[dict[str, Any]]:
    """Episodes similar to a query, by outcome, minimum reward and time window."""
    user_id = confine_user(principal, user_id)
    return memory.reflexion_search(
        q, only=only, min_reward=min_reward, since=since, k=k, until=until, user_id=user_id
    )


@router.post("/memory/episodes/{episode_id}/analyze", dependencies=WRITE)
def analyze_episode(episode_id: PathId, memory: Memory, k: K = 5) -> dict[str, Any]:
    """Reflexion failure analysis of one episode, with similar failures and repeated patterns."""
    return memory.reflexion_analyze(episode_id, k=k)


# -- skills and causal memory -------------------------------------------------------------------
@router.get("/memory/skills/search", dependencies=READ)
def search_skills(
    memory: Memory,
    task: Annotated[str, Query(min_length=1, max_length=1000)],
    k: K = 5,
    min_success_rate: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
) -> list[dict[str, Any]]:
    """Consolidated skills for a task, with success rates."""
    return memory.skill_search(task, k=k, min_success_rate=min_success_rate)


@router.get("/memory/causal/effects")
def causal_effects(
    memory: Memory,
    principal: Reader,
    user_id: Annotated[str | None, Query(max_length=120)] = None,
    top: K = 10,
) -> dict[str, Any]:
    """Population effects of ranking features on completion, and a user's shrunk effects."""
    return memory.causal_effects(user_id=confine_user(principal, user_id), top=top)


@router.get("/memory/causal/paths", dependencies=READ)
def causal_paths(
    memory: Memory,
    outcome: Annotated[str, Query(min_length=1, max_length=200)],
    max_depth: Annotated[int, Query(ge=1, le=5)] = 5,
    k: K = 10,
) -> list[dict[str, Any]]:
    """The most confident causal chains ending at an outcome node."""
    return memory.causal_paths(outcome, max_depth=max_depth, k=k)


@router.get("/memory/causal/causes", dependencies=READ)
def causal_causes(
    memory: Memory, event: Annotated[str, Query(min_length=1, max_length=100)], k: K = 10
) -> list[dict[str, Any]]:
    """The strongest causes of events of a type."""
    return memory.causal_causes(event, k=k)


# -- learner and audit --------------------------------------------------------------------------
@router.post("/admin/learn", dependencies=[Depends(require("admin"))])
def learn(memory: Memory) -> dict[str, Any]:
    """Run the nightly learner now (409 while another run is in progress)."""
    return memory.learn()


@router.get("/memory/learner/runs", dependencies=READ)
def learner_runs(memory: Memory, limit: K = 20) -> list[dict[str, Any]]:
    """Recent learner runs, newest first."""
    return memory.learner_runs(limit=limit)


@router.get("/memory/{memory_id}/history")
def history(memory_id: PathId, memory: Memory, principal: Reader) -> list[dict[str, Any]]:
    """The audit trail of any memory by id (a bound key: shared memories and its own user's)."""
    ensure_memory_visible(principal, memory, memory_id)
    return memory.history(memory_id)
