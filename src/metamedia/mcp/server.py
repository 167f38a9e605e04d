"""metamedia's MCP server: the engine's search, recommendations and agent memory as MCP tools.

A thin adapter: every tool calls the one service object (`Engine`, its `recs` and `bandit`, and
`MemoryFacade` over it) and returns the engine's own answer as structured content. Named errors
become tool errors whose text says what to change; nothing else is interpreted here.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal, ParamSpec, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp_types import ToolAnnotations
from pydantic import Field, StrictInt

from .. import __version__
from ..domain.limits import RECOMMEND_MAX_K, SEARCH_MAX_K
from ..errors import MetamediaError, NotFound, public_detail, without_paths
from ..memory.facade import MemoryFacade
from ..recommend.registry import ALGORITHM_NAMES as ALGORITHMS
from ..recommend.signals import SignalKind

if TYPE_CHECKING:
    from ..engine import Engine

P = ParamSpec("P")
R = TypeVar("R")

SERVER_NAME = "metamedia"
INSTRUCTIONS = (
    "metamedia searches and recommends movies and TV. Find ids with search_media, then use get_item, "
    "similar_media or recommend. Report what a user did with record_interaction so recommendations learn. "
    "Agent memory: strategy_* (reusable recommendation strategies), reflexion_* (past episodes and "
    "critiques), skill_search, causal_* (what drives outcomes)."
)
# Each tool says whether it writes (`@tool(write=True)`), in its annotations and in this meta key;
# over HTTP a tool that writes needs the `write` scope, every other tool `read` (see write_tool_names).
SCOPE_META = "metamedia/scope"
ITEM_URI = "metamedia://items/{item_id}"
PROFILE_URI = "metamedia://users/{user_id}/profile"

MediaType = Literal["movie", "tv"]
K = Annotated[int, Field(description=f"How many results (1..{SEARCH_MAX_K}).")]
SmallK = Annotated[int, Field(description=f"How many results (1..{RECOMMEND_MAX_K}).")]
UserId = Annotated[str, Field(description="The user's id, as the client application names it.")]
ItemId = Annotated[StrictInt, Field(description="A catalog item id (the `id` field of search results).")]
Genres = Annotated[
    list[str] | None,
    Field(description="Required genres, e.g. ['Science Fiction', 'Comedy']; all must match."),
]
Context = Annotated[
    dict[str, Any] | None,
    Field(description="Situation of the request, e.g. {'device': 'tv', 'time_of_day': 'evening'}."),
]


def tool_error(exc: MetamediaError) -> ToolError:
    """A tool error a model can act on: the engine's message, plus short structured detail if any."""
    text = without_paths(exc.message)
    if exc.detail is not None:
        detail = json.dumps(public_detail(exc.detail), default=str)
        if len(detail) <= 600:
            text = f"{text} ({detail})"
    return ToolError(text)


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a tool body, turning metamedia's named errors into MCP tool errors."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except MetamediaError as exc:
            raise tool_error(exc) from exc

    return wrapper


class _LazyMemory:
    """The agent-memory facade over the engine, opened on first use (its tables cost a little)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._facade: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._facade is None:
            with self._lock:
                if self._facade is None:
                    self._facade = MemoryFacade(self.engine)
        return self._facade


async def write_tool_names(server: MCPServer) -> frozenset[str]:
    """The tools of `server` registered with `write=True`."""
    return frozenset(t.name for t in await server.list_tools() if (t.meta or {}).get(SCOPE_META) == "write")


def build_server(engine: Engine) -> MCPServer:
    """An MCP server whose tools and resources answer from `engine`."""
    server: MCPServer = MCPServer(
        SERVER_NAME, version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    memory = _LazyMemory(engine)
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    writes = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)

    def tool(*, write: bool = False) -> Callable[[Callable[P, R]], Callable[P, R]]:
        def register(fn: Callable[P, R]) -> Callable[P, R]:
            wrapped = translated(fn)
            server.add_tool(
                wrapped,
                annotations=writes if write else reads,
                meta={SCOPE_META: "write" if write else "read"},
            )
            return wrapped

        return register

    # ----- catalog ---------------------------------------------------------------------------
    @tool()
    def search_media(
        query: Annotated[
            str, Field(description="What to find, in plain words: 'funny space movies from the 90s'.")
        ],
        k: K = 10,
        genres: Genres = None,
        year_min: Annotated[int | None, Field(description="Earliest release year.")] = None,
        year_max: Annotated[int | None, Field(description="Latest release year.")] = None,
        rating_min: Annotated[float | None, Field(description="Lowest average rating (0..10).")] = None,
        runtime_max: Annotated[int | None, Field(description="Longest runtime in minutes.")] = None,
        media_type: Annotated[MediaType | None, Field(description="'movie' or 'tv'.")] = None,
        ef: Annotated[
            int | None, Field(description="HNSW search breadth (1..4096); higher is slower and more exact.")
        ] = None,
    ) -> dict[str, Any]:
        """Search the catalog in natural language, with optional filters. Returns ranked items with reasons."""
        return engine.search(
            query,
            k,
            genres=genres,
            year_min=year_min,
            year_max=year_max,
            rating_min=rating_min,
            runtime_max=runtime_max,
            media_type=media_type,
            ef=ef,
        )

    @tool()
    def similar_media(item_id: ItemId, k: K = 10) -> dict[str, Any]:
        """Items most like a given item ("more like this"), with reasons."""
        return engine.similar(item_id, k)

    @tool()
    def get_item(item_id: ItemId) -> dict[str, Any]:
        """Everything the catalog knows about one item: title, year, genres, overview, ratings, ids."""
        return engine.get_item(item_id).to_dict()

    # ----- users and recommendations ---------------------------------------------------------
    @tool()
    def recommend(
        user_id: UserId,
        k: SmallK = 10,
        algorithm: Annotated[
            str, Field(description=f"'auto' lets the bandit choose; or one of {', '.join(ALGORITHMS[1:])}.")
        ] = "auto",
        context: Context = None,
        genres: Genres = None,
        rating_min: Annotated[float | None, Field(description="Lowest average rating (0..10).")] = None,
        runtime_max: Annotated[int | None, Field(description="Longest runtime in minutes.")] = None,
        media_type: Annotated[MediaType | None, Field(description="'movie' or 'tv'.")] = None,
        query: Annotated[
            str | None, Field(description="Optional free text to steer the recommendations.")
        ] = None,
    ) -> dict[str, Any]:
        """Personal recommendations for a user; unknown users get popular picks. Returns a decision id to report back."""
        return engine.recs.recommend(
            user_id,
            k,
            algorithm=algorithm,
            context=context,
            genres=genres,
            rating_min=rating_min,
            runtime_max=runtime_max,
            media_type=media_type,
            query=query,
        )

    @tool(write=True)
    def record_interaction(
        user_id: UserId,
        item_id: ItemId,
        kind: Annotated[SignalKind, Field(description="What the user did.")],
        value: Annotated[
            float | None, Field(description="The rating, for kind='rating' (0.5..5 or 1..10).")
        ] = None,
        completion: Annotated[
            float | None, Field(description="Share watched (0..1), for kind='watch'.")
        ] = None,
        watch_seconds: Annotated[
            float | None, Field(description="Seconds watched, for kind='watch'.")
        ] = None,
        context: Context = None,
        idempotency_key: Annotated[
            str | None, Field(description="Repeat a call with the same key and it is recorded once.")
        ] = None,
        decision_id: Annotated[
            str | None, Field(description="The decision_id of the recommendation this answers, if any.")
        ] = None,
    ) -> dict[str, Any]:
        """Record what a user did with an item (watched, rated, liked, skipped...); recommendations learn from it."""
        return engine.recs.record_interaction(
            user_id,
            item_id,
            str(kind.value),
            value=value,
            completion=completion,
            watch_seconds=watch_seconds,
            context=context,
            idempotency_key=idempotency_key,
            decision_id=decision_id,
        )

    @tool()
    def get_profile(user_id: UserId) -> dict[str, Any]:
        """What metamedia has learned about a user: interaction counts, favourite genres, recent items."""
        return engine.recs.profile(user_id)

    # ----- agent memory ----------------------------------------------------------------------
    @tool(write=True)
    def strategy_store(
        title: Annotated[str, Field(description="Short name of the strategy.")],
        description: Annotated[str, Field(description="What the strategy does and when it works.")],
        task_type: Annotated[str, Field(description="The kind of task it serves, e.g. 'recommend'.")],
        tags: Annotated[list[str] | None, Field(description="Free labels for finding it again.")] = None,
        heuristics: Annotated[
            list[str] | None, Field(description="Rules of thumb the strategy applies.")
        ] = None,
        constraints: Annotated[
            list[str] | None, Field(description="Conditions under which it must not be used.")
        ] = None,
    ) -> dict[str, Any]:
        """Store a reusable recommendation strategy in the reasoning bank."""
        return memory.get().strategy_store(
            title, description, task_type, tags=tags, heuristics=heuristics, constraints=constraints
        )

    @tool()
    def strategy_search(
        query: Annotated[str, Field(description="The situation to find strategies for.")],
        task_type: Annotated[str | None, Field(description="Only strategies for this task type.")] = None,
        k: SmallK = 5,
        min_confidence: Annotated[float, Field(description="Lowest confidence (0..1) to return.")] = 0.0,
    ) -> dict[str, Any]:
        """Find stored strategies that fit a situation, best first."""
        return {
            "results": memory.get().strategy_search(
                query, task_type=task_type, k=k, min_confidence=min_confidence
            )
        }

    @tool(write=True)
    def strategy_record_outcome(
        strategy_id: Annotated[
            str, Field(description="The id returned by strategy_store or strategy_search.")
        ],
        success: Annotated[bool, Field(description="Whether using the strategy worked.")],
        reward: Annotated[float, Field(description="How well it worked (0..1).")],
    ) -> dict[str, Any]:
        """Tell the reasoning bank how a strategy did; its confidence is updated."""
        return memory.get().strategy_record_outcome(strategy_id, success, reward)

    @tool(write=True)
    def reflexion_store(
        session_id: Annotated[str, Field(description="The session the episode belongs to.")],
        task: Annotated[str, Field(description="What was attempted, in plain words.")],
        context: Annotated[
            dict[str, Any], Field(description="The situation, e.g. {'user_id': 'u1', 'mood': 'calm'}.")
        ],
        recommended: Annotated[list[StrictInt | str], Field(description="What was recommended (item ids).")],
        predicted: Annotated[float, Field(description="The expected reward before the outcome.")],
        actual: Annotated[float, Field(description="The observed reward.")],
        reward: Annotated[float, Field(description="The reward credited to the episode.")],
        success: Annotated[bool, Field(description="Whether the episode succeeded.")],
        critique: Annotated[
            str | None, Field(description="What went right or wrong, in plain words.")
        ] = None,
    ) -> dict[str, Any]:
        """Store an episode (task, what was recommended, predicted vs actual outcome) with an optional critique."""
        return memory.get().reflexion_store(
            session_id, task, context, recommended, predicted, actual, reward, success, critique=critique
        )

    @tool()
    def reflexion_search(
        query: Annotated[str, Field(description="The task or situation to find past episodes for.")],
        only: Annotated[
            Literal["all", "successes", "failures"],
            Field(description="Only successes, only failures, or all."),
        ] = "all",
        min_reward: Annotated[float | None, Field(description="Lowest reward to return.")] = None,
        since: Annotated[float | None, Field(description="Only episodes after this Unix time.")] = None,
        k: SmallK = 5,
        user_id: Annotated[str | None, Field(description="Only this user's episodes.")] = None,
    ) -> dict[str, Any]:
        """Find past episodes similar to a task, to learn from what worked and what failed."""
        return {
            "results": memory.get().reflexion_search(
                query, only=only, min_reward=min_reward, since=since, k=k, user_id=user_id
            )
        }

    @tool()
    def reflexion_analyze(
        episode_id: Annotated[str, Field(description="The id of a stored episode.")],
    ) -> dict[str, Any]:
        """Analyse one episode: prediction error, likely causes, and what to change next time."""
        return memory.get().reflexion_analyze(episode_id)

    @tool()
    def skill_search(
        task: Annotated[str, Field(description="The task to find reusable skills for.")],
        k: SmallK = 5,
    ) -> dict[str, Any]:
        """Find reusable skills (proven step sequences) for a task."""
        return {"results": memory.get().skill_search(task, k=k)}

    @tool()
    def causal_effects(
        user_id: Annotated[str | None, Field(description="One user's effects; omit for everyone's.")] = None,
        top: Annotated[int, Field(description="How many features to return (1..100).")] = 10,
    ) -> dict[str, Any]:
        """Which item features (genres, moods, length...) cause better outcomes, with effect sizes."""
        return memory.get().causal_effects(user_id=user_id, top=top)

    @tool()
    def causal_paths(
        outcome: Annotated[str, Field(description="The outcome node, e.g. 'completion' or 'like'.")],
        max_depth: Annotated[int, Field(description="Longest path to follow (1..10).")] = 5,
        k: SmallK = 10,
    ) -> dict[str, Any]:
        """The strongest cause-to-outcome paths in the causal memory graph."""
        return {"results": memory.get().causal_paths(outcome, max_depth=max_depth, k=k)}

    # ----- operations ------------------------------------------------------------------------
    @tool()
    def bandit_stats() -> dict[str, Any]:
        """How the algorithm-picking bandit is doing: arms, posterior means, selection shares."""
        return engine.bandit.stats()

    @tool()
    def db_stats() -> dict[str, Any]:
        """Catalog and index statistics: item count, indexed count, backend, embedding model."""
        return engine.stats()

    # ----- resources -------------------------------------------------------------------------
    @server.resource(
        ITEM_URI, name="item", description="One catalog item as JSON.", mime_type="application/json"
    )
    def item_resource(item_id: str) -> str:
        if not item_id.isdigit():
            raise ResourceNotFoundError(f"item ids are whole numbers, got {item_id!r}")
        return _resource_json(lambda: engine.get_item(int(item_id)).to_dict())

    @server.resource(
        PROFILE_URI,
        name="user profile",
        description="What metamedia knows about a user, as JSON.",
        mime_type="application/json",
    )
    def profile_resource(user_id: str) -> str:
        return _resource_json(lambda: engine.recs.profile(user_id))

    return server


def _resource_json(read: Callable[[], Any]) -> str:
    try:
        return json.dumps(read(), default=str)
    except NotFound as exc:
        raise ResourceNotFoundError(without_paths(exc.message)) from exc
    except MetamediaError as exc:
        raise ResourceError(without_paths(exc.message)) from exc
