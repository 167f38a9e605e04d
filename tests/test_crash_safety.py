"""kill -9 the server during writes; after restart every acknowledged write is there (one short trial)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from .conftest import REPO, TMDB_5000, write_csv_slice


def load_trials():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("crash_trials", REPO / "scripts" / "crash_trials.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_trials"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    trials = load_trials()
    catalog = write_csv_slice(TMDB_5000, tmp_path / "slice.csv", 40)
    result = trials.run_trial(tmp_path / "trial", catalog, seed=7, kill_after=(2.0, 3.0))
    assert result.acked_items > 0 and result.acked_ingests > 0, result
    assert result.problems == []
    assert not result.secret_in_logs
    assert result.ok
