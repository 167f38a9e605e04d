"""Causal memory graph: events as nodes, (hyper)edges cause(s) -> effect with uplift, confidence, sample size.

A hyperedge has several causes that act together; for paths each of its causes leads to the effect.
Path confidence is the product of edge confidences along the path, so longer chains rank lower.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update

from ..errors import InvalidInput, NotFound
from .base import Clock, wall_clock
from .schema import causal_edge_causes, causal_edges, causal_nodes, create_memory_tables

MAX_DEPTH = 5


@dataclass(frozen=True)
class CausalNode:
    id: int
    event_type: str
    label: str
    attrs: dict[str, Any]


@dataclass(frozen=True)
class CausalEdge:
    id: int
    cause_ids: tuple[int, ...]
    effect_id: int
    uplift: float
    confidence: float
    sample_size: int


@dataclass(frozen=True)
class CausalPath:
    """A chain of events ending at the queried outcome, first cause first."""

    nodes: tuple[CausalNode, ...]
    edges: tuple[CausalEdge, ...]
    confidence: float  # product of edge confidences

    def describe(self) -> str:
        return " -> ".join(f"{n.event_type}:{n.label}" for n in self.nodes)


@dataclass(frozen=True)
class CauseStrength:
    edge: CausalEdge
    causes: tuple[CausalNode, ...]
    effect: CausalNode
    strength: float  # |uplift| * confidence


class CausalGraph:
    """The graph lives in SQL tables; queries load the edges (small) and search in memory."""

    def __init__(self, engine: Engine, *, clock: Clock = wall_clock) -> None:
        self.engine = engine
        self.clock = clock
        create_memory_tables(engine)

    def node(self, event_type: str, label: str, attrs: dict[str, Any] | None = None) -> CausalNode:
        """The node for (event_type, label), created on first use."""
        if not event_type.strip() or not label.strip():
            raise InvalidInput("a causal node needs an event type and a label")
        key = (causal_nodes.c.event_type == event_type) & (causal_nodes.c.label == label)
        with self.engine.begin() as conn:
            row = conn.execute(select(causal_nodes).where(key)).mappings().first()
            if row is None:
                conn.execute(
                    insert(causal_nodes).values(
                        event_type=event_type, label=label, attrs=attrs or {}, created_at=self.clock()
                    )
                )
                row = conn.execute(select(causal_nodes).where(key)).mappings().one()
        return CausalNode(row["id"], row["event_type"], row["label"], dict(row["attrs"]))

    def add_edge(
        self, causes: list[CausalNode], effect: CausalNode, *, uplift: float, confidence: float, sample_size: int,
        replace_evidence: bool = False,
    ) -> CausalEdge:  # fmt: skip
        """Record evidence that causes (together) change effect by `uplift`.

        Evidence for an existing edge is pooled by sample size unless replace_evidence is set,
        in which case the new estimate supersedes the old one.
        """
        if not causes:
            raise InvalidInput("an edge needs at least one cause")
        if not 0.0 <= confidence <= 1.0:
            raise InvalidInput(f"confidence must be within 0..1, got {confidence}")
        if sample_size < 1:
            raise InvalidInput("sample_size must be at least 1")
        cause_ids = tuple(sorted({c.id for c in causes}))
        if effect.id in cause_ids:
            raise InvalidInput("an event cannot cause itself")
        signature = ",".join(map(str, cause_ids)) + f"->{effect.id}"
        now = self.clock()
        with self.engine.begin() as conn:
            row = (
                conn.execute(select(causal_edges).where(causal_edges.c.signature == signature))
                .mappings()
                .first()
            )
            if row is None:
                edge_id = conn.execute(
                    insert(causal_edges).values(
                        signature=signature,
                        effect_id=effect.id,
                        uplift=uplift,
                        confidence=confidence,
                        sample_size=sample_size,
                        created_at=now,
                        updated_at=now,
                    )  # fmt: skip
                ).inserted_primary_key[0]  # type: ignore[index]
                conn.execute(
                    insert(causal_edge_causes), [{"edge_id": edge_id, "node_id": c} for c in cause_ids]
                )
                return CausalEdge(int(edge_id), cause_ids, effect.id, uplift, confidence, sample_size)
            if replace_evidence:
                new_uplift, new_conf, new_n = uplift, confidence, sample_size
            else:
                total = row["sample_size"] + sample_size
                new_uplift = (row["uplift"] * row["sample_size"] + uplift * sample_size) / total
                new_conf = (row["confidence"] * row["sample_size"] + confidence * sample_size) / total
                new_n = total
            conn.execute(
                update(causal_edges)
                .where(causal_edges.c.id == row["id"])
                .values(uplift=new_uplift, confidence=new_conf, sample_size=new_n, updated_at=now)
            )
        return CausalEdge(row["id"], cause_ids, effect.id, new_uplift, new_conf, new_n)

    def _load(self) -> tuple[dict[int, CausalNode], list[CausalEdge]]:
        with self.engine.connect() as conn:
            nodes = {
                r["id"]: CausalNode(r["id"], r["event_type"], r["label"], dict(r["attrs"]))
                for r in conn.execute(select(causal_nodes)).mappings()
            }
            causes: dict[int, list[int]] = {}
            for r in conn.execute(
                select(causal_edge_causes).order_by(
                    causal_edge_causes.c.edge_id, causal_edge_causes.c.node_id
                )
            ):
                causes.setdefault(r.edge_id, []).append(r.node_id)
            edges = [
                CausalEdge(
                    r["id"],
                    tuple(sorted(causes.get(r["id"], []))),
                    r["effect_id"],
                    r["uplift"],
                    r["confidence"],
                    r["sample_size"],
                )
                for r in conn.execute(select(causal_edges).order_by(causal_edges.c.id)).mappings()
            ]
        return nodes, edges

    def edges(self) -> list[CausalEdge]:
        return self._load()[1]

    def find_node(self, event_type: str, label: str) -> CausalNode:
        key = (causal_nodes.c.event_type == event_type) & (causal_nodes.c.label == label)
        with self.engine.connect() as conn:
            row = conn.execute(select(causal_nodes).where(key)).mappings().first()
        if row is None:
            raise NotFound(f"no causal node {event_type}:{label}")
        return CausalNode(row["id"], row["event_type"], row["label"], dict(row["attrs"]))

    def paths_to(
        self, outcome: CausalNode, *, max_depth: int = MAX_DEPTH, k: int = 10, min_confidence: float = 0.0
    ) -> list[CausalPath]:
        """The k most confident causal chains (1..max_depth edges) ending at outcome, best first."""
        if not 1 <= max_depth <= MAX_DEPTH:
            raise InvalidInput(f"max_depth must be within 1..{MAX_DEPTH}")
        nodes, edges = self._load()
        if outcome.id not in nodes:
            raise NotFound(f"no causal node {outcome.id}")
        into: dict[int, list[tuple[CausalEdge, int]]] = {}
        for edge in edges:
            for cause in edge.cause_ids:
                into.setdefault(edge.effect_id, []).append((edge, cause))
        # Best-first: confidence only falls as a chain grows, so paths pop out in ranking order.
        heap: list[tuple[float, int, tuple[int, ...], tuple[CausalEdge, ...]]] = [
            (-1.0, 0, (outcome.id,), ())
        ]
        counter = 1
        found: list[CausalPath] = []
        while heap and len(found) < k:
            neg_conf, _, chain, chain_edges = heapq.heappop(heap)
            if chain_edges:
                found.append(CausalPath(tuple(nodes[i] for i in chain), chain_edges, -neg_conf))
            if len(chain_edges) >= max_depth:
                continue
            for edge, cause in into.get(chain[0], []):
                conf = -neg_conf * edge.confidence
                if cause in chain or conf < min_confidence:
                    continue
                heapq.heappush(heap, (-conf, counter, (cause, *chain), (edge, *chain_edges)))
                counter += 1
        return found

    def strongest_causes(self, event_type: str, *, k: int = 10) -> list[CauseStrength]:
        """Edges into any node of event_type, ranked by |uplift| * confidence."""
        nodes, edges = self._load()
        ranked = [
            CauseStrength(
                e, tuple(nodes[c] for c in e.cause_ids), nodes[e.effect_id], abs(e.uplift) * e.confidence
            )
            for e in edges
            if nodes[e.effect_id].event_type == event_type
        ]
        ranked.sort(key=lambda s: -s.strength)
        return ranked[:k]
