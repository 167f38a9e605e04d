"""The MCP server over stdio, driven by the SDK's real client against `metamedia mcp` in a subprocess.

Every tool is called with valid input (answers compared with the engine's own) and with bad input
(an error result whose text says what to fix); resources are read; a write shows up in the store.
The tool tables here are reused by test_mcp_http.py.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult

from metamedia.engine import Engine
from metamedia.memory.facade import MemoryFacade
from metamedia.settings import Settings

from .conftest import TMDB_5000, write_csv_slice

CATALOG_ROWS = 60
ALL_TOOLS = {
    "search_media",
    "similar_media",
    "get_item",
    "recommend",
    "record_interaction",
    "get_profile",
    "strategy_store",
    "strategy_search",
    "strategy_record_outcome",
    "reflexion_store",
    "reflexion_search",
    "reflexion_analyze",
    "skill_search",
    "causal_effects",
    "causal_paths",
    "bandit_stats",
    "db_stats",
}
# Until the CLI mounts `mcp`, register it here so the real command runs through the real CLI.
LAUNCH = (
    "from metamedia.cli.main import app, main\n"
    "from metamedia.cli.mcp import mcp_command\n"
    "if not any(c.name == 'mcp' for c in app.registered_commands):\n"
    "    app.command('mcp')(mcp_command)\n"
    "main()\n"
)
SUBPROCESS_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}

# (tool, arguments, words the error must contain): each names what to fix.
BAD_CALLS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("search_media", {"query": "space", "k": 0}, ("k must be between 1 and 1000", "got 0")),
    ("search_media", {"query": "space", "genres": ["Polka"]}, ("unknown genre", "Polka")),
    (
        "search_media",
        {"query": "space", "year_min": 2010, "year_max": 2000},
        ("year_min 2010 is after year_max 2000",),
    ),
    ("search_media", {"query": "space", "media_type": "podcast"}, ("media_type", "'movie' or 'tv'")),
    ("search_media", {"k": 3}, ("query", "required")),
    ("similar_media", {"item_id": 987654321}, ("no item", "987654321")),
    ("similar_media", {"item_id": "the matrix"}, ("item_id", "integer")),
    ("get_item", {"item_id": 987654321}, ("no item with id 987654321",)),
    ("recommend", {"user_id": "u-bad", "k": 0}, ("k must be an integer in 1..100", "got 0")),
    ("recommend", {"user_id": "u-bad", "algorithm": "magic"}, ("unknown algorithm 'magic'",)),
    ("record_interaction", {"user_id": "u-bad", "item_id": 1, "kind": "teleport"}, ("kind", "'watch'")),
    (
        "record_interaction",
        {"user_id": "u-bad", "item_id": 1, "kind": "like", "value": 4},
        ("value is only for ratings",),
    ),
    ("get_profile", {"user_id": "nobody-ever"}, ("no user 'nobody-ever'",)),
    ("strategy_store", {"title": "t", "description": "d"}, ("task_type", "required")),
    ("strategy_search", {"query": "   "}, ("query must not be empty",)),
    ("strategy_search", {"query": "x", "min_confidence": 3}, ("min_confidence must be within 0..1", "got 3")),
    (
        "strategy_record_outcome",
        {"strategy_id": "no-such@v1", "success": True, "reward": 1.0},
        ("no-such@v1",),
    ),
    (
        "reflexion_store",
        {
            "session_id": "s",
            "task": "t",
            "context": {},
            "recommended": [1],
            "predicted": 0.9,
            "actual": 0.1,
            "reward": 0.1,
            "success": True,
        },
        ("success=True contradicts actual engagement 0.1",),
    ),  # fmt: skip
    ("reflexion_search", {"query": "x", "only": "maybe"}, ("only", "'successes'")),
    ("reflexion_analyze", {"episode_id": "no-such-episode"}, ("no-such-episode",)),
    ("skill_search", {"task": ""}, ("task must not be empty",)),
    ("causal_effects", {"top": 0}, ("0",)),
    ("causal_paths", {"outcome": "completion", "k": 0}, ("0",)),
    ("causal_paths", {"outcome": "nothing-here"}, ("no causal node outcome:nothing-here",)),
    # bandit_stats and db_stats take no arguments; the SDK ignores unknown ones, so they have no bad input.
    ("no_such_tool", {}, ("no_such_tool",)),
]


def as_json(value: Any) -> Any:
    """A Python answer as it looks after the trip through JSON (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


class McpCaller:
    """A live MCP client session, called synchronously from tests through an anyio portal."""

    def __init__(self, portal: BlockingPortal, session: ClientSession) -> None:
        self.portal = portal
        self.session = session

    def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        return self.portal.call(self.session.call_tool, tool, arguments)

    def ok(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = self.call(tool, arguments)
        assert not result.is_error, f"{tool} failed: {result.content}"
        assert isinstance(result.structured_content, dict)
        return result.structured_content

    def error_text(self, tool: str, arguments: dict[str, Any]) -> str:
        result = self.call(tool, arguments)
        assert result.is_error, f"{tool}({arguments}) should fail but returned {result.structured_content}"
        return " ".join(getattr(block, "text", "") for block in result.content)

    def list_tools(self) -> list[Any]:
        return self.portal.call(self.session.list_tools).tools

    def read_json(self, uri: str) -> Any:
        result = self.portal.call(self.session.read_resource, uri)
        return json.loads(result.contents[0].text)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    """A data folder holding the first 60 real TMDB 5000 movies, embedded and indexed."""
    root = tmp_path_factory.mktemp("mcp-stdio")
    catalog = write_csv_slice(TMDB_5000, root / "catalog.csv", CATALOG_ROWS)
    with Engine(Settings(data_dir=root / "data"), embedder=embedder) as engine:
        engine.ingest([catalog])
        seed_causal_graph(engine)
    return root / "data"


def seed_causal_graph(engine: Engine) -> None:
    """Evidence the learner would record: late nights lead to comedies, comedies get finished."""
    graph = engine.memory.graph
    comedy, finished = graph.node("genre", "Comedy"), graph.node("outcome", "completion")
    graph.add_edge([graph.node("context", "late_night")], comedy, uplift=0.3, confidence=0.8, sample_size=40)
    graph.add_edge([comedy], finished, uplift=0.2, confidence=0.7, sample_size=60)


@pytest.fixture(scope="module")
def engine(data_dir: Path, embedder) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """The test's own engine on the same data: the reference answers."""
    with Engine(Settings(data_dir=data_dir), embedder=embedder) as eng:
        yield eng


@pytest.fixture(scope="module")
def mcp(data_dir: Path) -> Iterator[McpCaller]:
    params = StdioServerParameters(
        command=sys.executable, args=["-c", LAUNCH, "--data-dir", str(data_dir), "mcp"], env=SUBPROCESS_ENV
    )

    @asynccontextmanager
    async def session() -> AsyncIterator[ClientSession]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            yield s

    with start_blocking_portal() as portal, portal.wrap_async_context_manager(session()) as s:
        yield McpCaller(portal, s)


# ----- checks shared with the HTTP transport ---------------------------------------------------
def check_tool_list(mcp: McpCaller) -> None:
    tools = {t.name: t for t in mcp.list_tools()}
    assert set(tools) == ALL_TOOLS
    for tool in tools.values():
        assert len(tool.description or "") > 20, tool.name
        assert tool.input_schema["type"] == "object"
        assert tool.output_schema is not None, tool.name
    search = tools["search_media"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["k"]["type"] == "integer"
    assert "watch" in str(tools["record_interaction"].input_schema)
    assert tools["record_interaction"].annotations.read_only_hint is False
    assert tools["search_media"].annotations.read_only_hint is True


def check_catalog_tools(mcp: McpCaller, engine: Engine) -> None:
    expected = engine.search("space adventure", 5)
    got = mcp.ok("search_media", {"query": "space adventure", "k": 5})
    assert [r["id"] for r in got["results"]] == [r["id"] for r in expected["results"]]
    assert len(got["results"]) == 5

    filtered = mcp.ok("search_media", {"query": "action", "k": 5, "year_min": 2005, "media_type": "movie"})
    assert filtered["results"] and all(r["year"] >= 2005 for r in filtered["results"])

    first = expected["results"][0]["id"]
    like = mcp.ok("similar_media", {"item_id": first, "k": 4})
    assert [r["id"] for r in like["results"]] == [r["id"] for r in engine.similar(first, 4)["results"]]
    assert first not in [r["id"] for r in like["results"]]

    assert mcp.ok("get_item", {"item_id": first}) == as_json(engine.get_item(first).to_dict())
    assert mcp.read_json(f"metamedia://items/{first}") == as_json(engine.get_item(first).to_dict())

    stats = mcp.ok("db_stats", {})
    assert (stats["items"], stats["indexed"]) == (engine.count(), CATALOG_ROWS)
    arms = mcp.ok("bandit_stats", {})["arms"]
    assert [a["name"] for a in arms] == [a["name"] for a in engine.bandit.stats()["arms"]]


def check_user_tools(mcp: McpCaller, engine: Engine, user_id: str) -> None:
    items = [r["id"] for r in engine.search("war", 3)["results"]]
    recorded = mcp.ok("record_interaction", {"user_id": user_id, "item_id": items[0], "kind": "like"})
    assert (recorded["user_id"], recorded["item_id"], recorded["kind"]) == (user_id, items[0], "like")
    rated = mcp.ok(
        "record_interaction", {"user_id": user_id, "item_id": items[1], "kind": "rating", "value": 4.5}
    )
    assert rated["value"] == 4.5

    profile = mcp.ok("get_profile", {"user_id": user_id})
    stored = engine.recs.profile(user_id)
    assert profile["interactions"] == stored["interactions"] == 2
    assert {r["item_id"] for r in profile["recent"]} == {items[0], items[1]}
    assert mcp.read_json(f"metamedia://users/{user_id}/profile")["counts"] == stored["counts"]

    recs = mcp.ok("recommend", {"user_id": user_id, "k": 5, "algorithm": "popularity"})
    assert recs["results"] and len(recs["results"]) <= 5
    assert not {items[0], items[1]} & {r["id"] for r in recs["results"]}, (
        "recommended something already rated"
    )


def check_memory_tools(mcp: McpCaller, engine: Engine, tag: str) -> None:
    stored = mcp.ok(
        "strategy_store",
        {"title": f"Late-night comfort picks {tag}", "description": "Short, familiar comedies after 11pm.",
         "task_type": "recommendation", "tags": ["late_night"], "heuristics": ["prefer runtimes under 100 minutes"]},
    )  # fmt: skip
    facade = MemoryFacade(engine)
    found = mcp.ok("strategy_search", {"query": "comedies late at night", "k": 10})["results"]
    assert stored["id"] in [m["strategy"]["id"] for m in found]
    reference = facade.strategy_search("comedies late at night", k=10)
    assert [m["strategy"]["id"] for m in found] == [m["strategy"]["id"] for m in reference]

    updated = mcp.ok("strategy_record_outcome", {"strategy_id": stored["id"], "success": True, "reward": 0.9})
    assert updated["uses"] == stored["uses"] + 1 and updated["successes"] == stored["successes"] + 1

    episode = mcp.ok(
        "reflexion_store",
        {"session_id": f"s-{tag}", "task": f"evening thriller for a tired viewer {tag}", "context": {"mood": "tired"},
         "recommended": [1, 2], "predicted": 0.9, "actual": 0.1, "reward": 0.1, "success": False,
         "critique": "too long for a tired evening"},
    )  # fmt: skip
    hits = mcp.ok(
        "reflexion_search", {"query": f"evening thriller for a tired viewer {tag}", "only": "failures"}
    )
    assert episode["id"] in [h["episode"]["id"] for h in hits["results"]]
    analysis = mcp.ok("reflexion_analyze", {"episode_id": episode["id"]})
    assert analysis["failed"] is True and analysis["prediction_gap"] == pytest.approx(0.8)

    skills = mcp.ok("skill_search", {"task": "recommend a comedy", "k": 3})["results"]
    assert skills == as_json(facade.skill_search("recommend a comedy", k=3))
    assert mcp.ok("causal_effects", {"top": 5}) == as_json(facade.causal_effects(top=5))
    paths = mcp.ok("causal_paths", {"outcome": "completion", "k": 3})["results"]
    assert paths and paths == as_json(facade.causal_paths("completion", k=3))
    assert any(len(p["nodes"]) == 3 for p in paths), "the two-step chain late_night → Comedy → completion"


def check_bad_calls(mcp: McpCaller) -> None:
    for tool, arguments, words in BAD_CALLS:
        text = mcp.error_text(tool, arguments)
        for word in words:
            assert word in text, f"{tool}({arguments}): {word!r} not in {text!r}"


# ----- stdio -------------------------------------------------------------------------------------
def test_lists_every_tool_with_typed_schemas(mcp: McpCaller) -> None:
    check_tool_list(mcp)


def test_catalog_tools_answer_like_the_engine(mcp: McpCaller, engine: Engine) -> None:
    check_catalog_tools(mcp, engine)


def test_interactions_recorded_over_mcp_reach_the_store(mcp: McpCaller, engine: Engine) -> None:
    check_user_tools(mcp, engine, "stdio-user")


def test_memory_tools_answer_like_the_memory_facade(mcp: McpCaller, engine: Engine) -> None:
    check_memory_tools(mcp, engine, "stdio")


def test_bad_input_gives_errors_that_say_what_to_fix(mcp: McpCaller) -> None:
    check_bad_calls(mcp)


def test_missing_resources_are_mcp_errors(mcp: McpCaller) -> None:
    for uri, words in (
        ("metamedia://items/987654321", "no item with id 987654321"),
        ("metamedia://items/abc", "whole numbers"),
        ("metamedia://users/nobody-ever/profile", "no user 'nobody-ever'"),
    ):
        with pytest.raises(MCPError, match=words):
            mcp.read_json(uri)
