"""Memory changes recommendations: a user who skips every horror film stops getting horror, and a
restarted engine on the same data folder still remembers why."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

from metamedia.engine import Engine
from metamedia.memory.facade import MemoryFacade
from metamedia.settings import Settings

from .conftest import TMDB_5000

CONTEXT = {"hour": 21, "day_of_week": 5, "device": "tv", "session_minutes": 150}


def horror_slice(dest: Path, scan: int = 300, others: int = 34) -> Path:
    """Real TMDB 5000 rows: every horror film among the first `scan` rows plus the first `others`
    films that are not horror (a small catalog where horror is a minority, as in the full one)."""
    csv.field_size_limit(sys.maxsize)
    with (
        open(TMDB_5000, newline="", encoding="utf-8") as fin,
        open(dest, "w", newline="", encoding="utf-8") as fout,
    ):
        reader, writer = csv.DictReader(fin), None
        kept_others = 0
        for i, row in enumerate(reader):
            if i >= scan:
                break
            horror = any(g["name"] == "Horror" for g in json.loads(row["genres"]))
            if not horror and kept_others >= others:
                continue
            kept_others += 0 if horror else 1
            if writer is None:
                writer = csv.DictWriter(fout, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
    return dest


def is_horror(row: dict[str, object]) -> bool:
    return "Horror" in (row.get("genres") or [])  # type: ignore[operator]


def test_skipping_horror_removes_it_from_recommendations_and_survives_restart(
    tmp_path: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    engine = Engine(Settings(data_dir=data_dir), embedder=embedder)
    engine.ingest([horror_slice(tmp_path / "slice.csv")])
    memory = MemoryFacade(engine)

    candidates = engine.search("scary horror monster movie", k=20)["results"]
    horror = [r for r in candidates if is_horror(r)]
    assert len(horror) >= 3, "the real catalog slice should put horror films in a horror search"
    before = memory.rerank("fan", candidates, CONTEXT)
    assert any(is_horror(r) for r in before["results"]), "no memory yet: horror stays"

    # The user finishes films of the genres horror films share (action, drama...), as many of each
    # as there are horror films in it, then skips every horror film in the catalog.
    everything = engine.search("action adventure drama science fiction thriller", k=100)["results"]
    all_horror = [r for r in everything if is_horror(r)]
    owed = Counter(g for r in all_horror for g in r["genres"] if g != "Horror")
    for row in (r for r in everything if not is_horror(r)):
        if any(owed[g] > 0 for g in row["genres"]):
            owed.subtract(row["genres"])
            memory.record_feedback("fan", row["id"], "complete", 0.95, CONTEXT, score=row["score"])
    added: list[dict[str, object]] = []
    for row in all_horror:
        result = memory.record_feedback("fan", row["id"], "skip", 0.0, CONTEXT, score=max(row["score"], 0.5))
        assert result["episode"]["success"] is False and "skip" in result["episode"]["critique"]
        added += result["constraints_added"]

    assert [c["subject"] for c in added] == ["Horror"], "only the skipped genre becomes a constraint"
    after = memory.rerank("fan", candidates, CONTEXT)
    assert not any(is_horror(r) for r in after["results"])
    assert any(n.startswith("avoiding Horror: you skipped") for n in after["notes"])
    assert len(after["results"]) == len(candidates) - len(horror), "only horror left the list"
    # Another user is not affected by this user's memory.
    assert any(is_horror(r) for r in memory.rerank("someone-else", candidates, CONTEXT)["results"])
    constraint_id = f"constraint:{added[0]['id']}"
    assert memory.history(constraint_id)[0]["action"] == "created"
    engine.close()

    restarted = Engine(Settings(data_dir=data_dir), embedder=embedder)
    try:
        again = MemoryFacade(restarted)
        fresh = restarted.search("scary horror monster movie", k=20)["results"]
        kept = again.rerank("fan", fresh, CONTEXT)
        assert fresh and not any(is_horror(r) for r in kept["results"])
        assert any("avoiding Horror" in n for n in kept["notes"])
        assert [c["subject"] for c in again.user_constraints("fan")] == ["Horror"]
    finally:
        restarted.close()
