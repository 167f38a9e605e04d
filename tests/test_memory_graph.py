"""Causal memory graph: paths to an outcome by chain confidence, strongest causes, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from metamedia.errors import InvalidInput
from metamedia.memory.graph import CausalGraph


def build(graph: CausalGraph) -> dict[str, int]:
    n = {
        "evening": graph.node("context", "evening"),
        "long_film": graph.node("recommendation", "long film"),
        "tv": graph.node("context", "tv"),
        "genre": graph.node("recommendation", "genre match"),
        "started": graph.node("engagement", "started"),
        "completed": graph.node("outcome", "completed"),
        "skipped": graph.node("outcome", "skipped"),
    }
    graph.add_edge([n["evening"]], n["long_film"], uplift=0.3, confidence=0.9, sample_size=400)
    graph.add_edge([n["long_film"]], n["started"], uplift=0.2, confidence=0.8, sample_size=300)
    graph.add_edge([n["started"]], n["completed"], uplift=0.5, confidence=0.95, sample_size=900)
    graph.add_edge([n["genre"], n["tv"]], n["completed"], uplift=0.15, confidence=0.6, sample_size=120)
    graph.add_edge([n["genre"]], n["skipped"], uplift=-0.25, confidence=0.9, sample_size=200)
    return {k: v.id for k, v in n.items()}


def test_paths_to_an_outcome_rank_by_the_product_of_confidences(tmp_path: Path) -> None:
    graph = CausalGraph(create_engine(f"sqlite:///{tmp_path / 'g.db'}"))
    ids = build(graph)
    paths = graph.paths_to(graph.find_node("outcome", "completed"))
    confidences = [p.confidence for p in paths]
    assert confidences == sorted(confidences, reverse=True)
    chain = next(p for p in paths if p.nodes[0].id == ids["evening"])
    assert [n.label for n in chain.nodes] == ["evening", "long film", "started", "completed"]
    assert chain.confidence == pytest.approx(0.9 * 0.8 * 0.95)
    # The hyperedge reaches the outcome from each of its causes.
    assert {p.nodes[0].label for p in paths if len(p.edges) == 1} == {"started", "genre match", "tv"}
    assert all(p.nodes[-1].label == "completed" for p in paths)


def test_path_depth_is_bounded(tmp_path: Path) -> None:
    graph = CausalGraph(create_engine(f"sqlite:///{tmp_path / 'g.db'}"))
    chain = [graph.node("step", f"s{i}") for i in range(8)]
    for a, b in zip(chain, chain[1:], strict=False):
        graph.add_edge([a], b, uplift=0.1, confidence=0.99, sample_size=50)
    paths = graph.paths_to(chain[-1], k=50)
    assert max(len(p.edges) for p in paths) == 5
    assert len(paths) == 5
    assert len(graph.paths_to(chain[-1], max_depth=2, k=50)) == 2
    with pytest.raises(InvalidInput):
        graph.paths_to(chain[-1], max_depth=6)


def test_strongest_causes_of_an_event_type(tmp_path: Path) -> None:
    graph = CausalGraph(create_engine(f"sqlite:///{tmp_path / 'g.db'}"))
    build(graph)
    causes = graph.strongest_causes("outcome")
    strengths = [c.strength for c in causes]
    assert strengths == sorted(strengths, reverse=True)
    assert causes[0].causes[0].label == "started" and causes[0].strength == pytest.approx(0.5 * 0.95)
    assert {c.effect.event_type for c in causes} == {"outcome"}
    assert graph.strongest_causes("context") == []


def test_evidence_pools_by_sample_size_or_supersedes(tmp_path: Path) -> None:
    graph = CausalGraph(create_engine(f"sqlite:///{tmp_path / 'g.db'}"))
    a, b = graph.node("feature", "a"), graph.node("outcome", "b")
    graph.add_edge([a], b, uplift=0.2, confidence=0.8, sample_size=100)
    pooled = graph.add_edge([a], b, uplift=0.4, confidence=1.0, sample_size=300)
    assert pooled.uplift == pytest.approx(0.35) and pooled.sample_size == 400
    replaced = graph.add_edge([a], b, uplift=0.1, confidence=0.7, sample_size=50, replace_evidence=True)
    assert (replaced.uplift, replaced.sample_size) == (0.1, 50)
    assert len(graph.edges()) == 1
    with pytest.raises(InvalidInput):
        graph.add_edge([a], a, uplift=0.1, confidence=0.5, sample_size=1)
    with pytest.raises(InvalidInput):
        graph.add_edge([a], b, uplift=0.1, confidence=1.5, sample_size=1)


def test_graph_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    build(CausalGraph(create_engine(url)))
    reopened = CausalGraph(create_engine(url))
    paths = reopened.paths_to(reopened.find_node("outcome", "completed"))
    assert paths[0].nodes[0].label == "started"
    assert len(reopened.edges()) == 5


def test_memory_tables_compile_for_postgresql_too() -> None:
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    from metamedia.memory.schema import memory_metadata

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    ddl = [str(CreateTable(t).compile(dialect=dialect)) for t in memory_metadata.sorted_tables]
    ddl += [
        str(CreateIndex(i).compile(dialect=dialect)) for t in memory_metadata.sorted_tables for i in t.indexes
    ]
    text = "\n".join(ddl)
    assert "BYTEA" in text and "JSON" in text and "AUTOINCREMENT" not in text
