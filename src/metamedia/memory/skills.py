"""Skill library: repeated successful episodes consolidated into reusable skills with success rates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert, select, update

from ..errors import InvalidInput, NotFound
from .audit import AuditLog
from .base import (
    DAY_SECONDS,
    CachedEncoder,
    Clock,
    Embedder,
    daypart,
    new_id,
    vector_from_bytes,
    vector_to_bytes,
    wall_clock,
)
from .schema import create_memory_tables, episodes, skills


@dataclass(frozen=True)
class Skill:
    """A reusable way of doing a task: which strategies, in which context, and how often it worked."""

    id: str
    name: str
    task: str
    description: str
    strategy_ids: list[str]
    context_tags: list[str]
    attempts: int
    successes: int
    mean_reward: float
    episode_ids: list[str]

    @property
    def success_rate(self) -> float:
        return self.successes / self.attempts if self.attempts else 0.0


@dataclass
class ConsolidationReport:
    created: list[Skill] = field(default_factory=list)
    updated: list[Skill] = field(default_factory=list)


@dataclass(frozen=True)
class SkillMatch:
    skill: Skill
    similarity: float


def _row_to_skill(row: Any) -> Skill:
    return Skill(**{k: row[k] for k in Skill.__dataclass_fields__})


def _group_key(row: Any) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    families = tuple(sorted({sid.split("@")[0] for sid in row["strategy_ids"] or []}))
    hour = (row["context"] or {}).get("hour")
    tags = (daypart(int(hour)),) if hour is not None else ()
    return row["task"], families, tags


class SkillLibrary:
    """Consolidates episodes into skills (SQL) and searches them by task."""

    def __init__(
        self, engine: Engine, embedder: Embedder, *, clock: Clock = wall_clock, audit: AuditLog | None = None
    ) -> None:
        self.engine = engine
        self.encoder = CachedEncoder(embedder)
        self.clock = clock
        self.audit = audit or AuditLog(engine, clock)
        create_memory_tables(engine)

    def consolidate(
        self, *, min_attempts: int = 3, min_reward: float = 0.6, window_days: float = 30.0
    ) -> ConsolidationReport:
        """Group recent episodes by (task, strategy families, part of day); a group with at least
        min_attempts attempts, at least one success and mean reward >= min_reward becomes a skill
        (or refreshes the existing one)."""
        if min_attempts < 1 or window_days <= 0:
            raise InvalidInput("min_attempts must be >= 1 and window_days > 0")
        since = self.clock() - window_days * DAY_SECONDS
        query = select(episodes).where((episodes.c.status == "active") & (episodes.c.created_at >= since))
        groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[Any]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query).mappings():
                groups.setdefault(_group_key(row), []).append(row)
        report = ConsolidationReport()
        for (task, families, tags), rows in sorted(groups.items()):
            attempts = sum(int(r["weight"]) for r in rows)
            successes = sum(int(r["weight"]) for r in rows if r["success"])
            mean_reward = sum(r["reward"] * r["weight"] for r in rows) / attempts
            if attempts < min_attempts or successes == 0 or mean_reward < min_reward:
                continue
            strategy_ids = sorted({sid for r in rows for sid in r["strategy_ids"] or []})
            where = f" in the {tags[0].replace('_', ' ')}" if tags else ""
            how = f" with {', '.join(families)}" if families else ""
            name = f"{task}{where}{how}"
            description = (
                f"To {task}{where}, apply {', '.join(families) or 'the default ranking'}: "
                f"worked {successes} of {attempts} times, mean reward {mean_reward:.2f}."
            )
            values = {
                "name": name, "task": task, "description": description, "strategy_ids": strategy_ids,
                "context_tags": list(tags), "attempts": attempts, "successes": successes,
                "mean_reward": mean_reward, "episode_ids": [r["id"] for r in rows][-50:], "updated_at": self.clock(),
            }  # fmt: skip
            signature = f"{task}|{','.join(families)}|{','.join(tags)}"
            vector = self.encoder.encode_many([f"{name}. {description}"])[0]
            with self.engine.begin() as conn:
                existing = conn.execute(select(skills.c.id).where(skills.c.signature == signature)).scalar()
                if existing is None:
                    skill_id = new_id()
                    conn.execute(
                        insert(skills).values(
                            id=skill_id,
                            signature=signature,
                            embedding=vector_to_bytes(vector, self.encoder.dim),
                            status="active",
                            created_at=self.clock(),
                            **values,
                        )  # fmt: skip
                    )
                    self.audit.record(
                        conn, "skill", skill_id, "created", {"attempts": attempts, "successes": successes}
                    )
                else:
                    skill_id = existing
                    conn.execute(
                        update(skills).where(skills.c.id == skill_id)
                        .values(embedding=vector_to_bytes(vector, self.encoder.dim), **values)
                    )  # fmt: skip
                    self.audit.record(
                        conn, "skill", skill_id, "refreshed", {"attempts": attempts, "successes": successes}
                    )
            skill = self.get(skill_id)
            (report.created if existing is None else report.updated).append(skill)
        return report

    def get(self, skill_id: str) -> Skill:
        with self.engine.connect() as conn:
            row = conn.execute(select(skills).where(skills.c.id == skill_id)).mappings().first()
        if row is None:
            raise NotFound(f"no skill {skill_id!r}")
        return _row_to_skill(row)

    def list_skills(self) -> list[Skill]:
        """Active skills, best success rate first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(skills).where(skills.c.status == "active")).mappings().all()
        return sorted((_row_to_skill(r) for r in rows), key=lambda s: (-s.success_rate, -s.attempts))

    def search(self, task: str, *, k: int = 5, min_success_rate: float = 0.0) -> list[SkillMatch]:
        """Skills most similar to a task description, among those with success rate >= min_success_rate."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(skills).where(skills.c.status == "active")).mappings().all()
        pool = [(r, _row_to_skill(r)) for r in rows]
        pool = [(r, s) for r, s in pool if s.success_rate >= min_success_rate]
        if not pool:
            return []
        matrix = np.vstack([vector_from_bytes(r["embedding"], self.encoder.dim) for r, _ in pool])
        sims = matrix @ self.encoder.encode_one(task)
        order = np.argsort(-sims, kind="stable")[:k]
        return [SkillMatch(pool[i][1], float(sims[i])) for i in order]
