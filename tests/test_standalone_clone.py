"""A fresh clone stands alone: the suite collects with no folder beside the repository, and no tracked
file names an absolute path of the machine it was written on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(
    GIT is None or not (REPO / ".git").exists(), reason="needs git and a git checkout of the repository"
)


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run([GIT or "git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_a_fresh_clone_without_anything_beside_it_collects_the_whole_suite(tmp_path: Path) -> None:
    clone = tmp_path / "alone" / "metamedia"
    git("clone", "--quiet", "--no-hardlinks", str(REPO), str(clone))
    assert sorted(p.name for p in clone.parent.iterdir()) == ["metamedia"]  # nothing beside the clone
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(clone / "src"), str(clone)])}
    where = subprocess.run(
        [sys.executable, "-c", "import metamedia; print(metamedia.__file__)"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(clone / "src")  # the clone's code, not this checkout's
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ tests collected in [\d.]+s", summary), summary
    assert int(summary.split()[0]) > 500


def test_no_tracked_file_names_an_absolute_machine_path() -> None:
    machine_root = "/" + "work" + "/"  # the development machines' checkout root
    hits = subprocess.run(
        [GIT or "git", "grep", "-n", "-I", "-F", machine_root, "--", "."],
        cwd=REPO, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert hits == ""


def test_tests_read_only_files_inside_the_repository() -> None:
    sibling = "shared"  # the data folder the development checkouts have beside the repository
    outside = re.compile(rf"parents\[2\]|\.\./{sibling}|[\"']{sibling}[\"']")
    offenders = [
        f"{path.name}:{n}"
        for path in sorted((REPO / "tests").glob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line) and path.name != Path(__file__).name
    ]
    assert offenders == []
