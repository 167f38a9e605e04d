"""Every setting, CLI command and HTTP route is documented, and the README keeps its promises."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "scripts" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_reference_is_current() -> None:
    current = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert current == _generator().render(), "run .venv/bin/python scripts/gen_reference.py"


def test_reference_covers_every_setting_command_and_route() -> None:
    text = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    gen = _generator()
    for row in gen.settings_rows() + gen.command_rows() + gen.route_rows():
        assert row in text
    for must in (
        "METAMEDIA_DATA_DIR",
        "metamedia search",
        "GET /search",
        "POST /users/{user_id}/interactions",
    ):
        assert must in text


def test_readme_quick_start_is_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("```", 2)[1]
    assert [line for line in quick.strip().splitlines() if line.strip()] == ["make run", "make test"]
