"""`metamedia memory ...` and `metamedia learn` through typer's CliRunner, on a real data folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner, Result

from metamedia.cli.memory import app as memory_app
from metamedia.cli.memory import learn_command

from .conftest import MOVIELENS

runner = CliRunner()
cli = typer.Typer()
# The same mount lines the main CLI uses.
cli.add_typer(memory_app, name="memory")
cli.command("learn")(learn_command)


def invoke(data_dir: Path, *args: str) -> Result:
    return runner.invoke(cli, list(args), env={"METAMEDIA_DATA_DIR": str(data_dir)})


def out(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_memory_commands_round_trip_through_the_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    added = out(
        invoke(data, "memory", "strategies", "add", "Late night thrillers", "--task-type", "recommendation",
               "--description", "After 11pm suggest tense thrillers under 100 minutes.", "--tag", "late_night")
    )  # fmt: skip
    sid = added["id"]
    found = out(invoke(data, "memory", "strategies", "search", "tense film late at night", "--k", "2"))
    assert found[0]["strategy"]["id"] == sid
    assert out(invoke(data, "memory", "strategies", "outcome", sid, "--failure"))["uses"] == 1
    trail = out(invoke(data, "memory", "history", sid))
    assert [a["action"] for a in trail] == ["created", "outcome"]

    learnt = out(
        invoke(
            data, "learn", "--movielens", str(MOVIELENS), "--max-interactions", "3000"
        )
    )
    assert learnt["causal_source"] == "movielens" and learnt["interactions"] == 3000
    effects = out(invoke(data, "memory", "causal", "effects", "--top", "2"))["population"]
    assert len(effects) == 2 and set(learnt["causal_weights"]) >= {e["feature"] for e in effects}
    paths = out(invoke(data, "memory", "causal", "paths", "completion", "--k", "3"))
    assert paths and paths[0]["path"].endswith("outcome:completion")
    assert out(invoke(data, "memory", "runs"))[0]["run_id"] == learnt["run_id"]


def test_errors_become_exit_codes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    missing = invoke(data, "memory", "strategies", "outcome", "nope@v1", "--success")
    assert missing.exit_code == 3 and "nope@v1" in missing.output
    bad = invoke(data, "memory", "episodes", "search", "anything", "--only", "sometimes")
    assert bad.exit_code == 2 and "only must be one of" in bad.output
    assert invoke(data, "memory", "skills", "search", "x", "--k", "0").exit_code == 2
