"""Audit trail: every change to any memory is appended here, so history(id) can explain it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from .base import Clock, wall_clock
from .schema import audit_log, create_memory_tables


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change: what kind of memory, which one, what happened, and when."""

    memory_kind: str
    memory_id: str
    action: str
    detail: dict[str, Any]
    at: float


class AuditLog:
    """Append-only log of memory changes, stored in the `memory_audit` table."""

    def __init__(self, engine: Engine, clock: Clock = wall_clock) -> None:
        self.engine = engine
        self.clock = clock
        create_memory_tables(engine)

    def record(
        self,
        conn: Connection,
        memory_kind: str,
        memory_id: str,
        action: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry inside the caller's transaction (so it commits with the change)."""
        conn.execute(
            insert(audit_log).values(
                memory_kind=memory_kind,
                memory_id=str(memory_id),
                action=action,
                detail=detail or {},
                at=self.clock(),
            )
        )

    def history(self, memory_id: str) -> list[AuditEntry]:
        """Every change to one memory, oldest first."""
        query = select(audit_log).where(audit_log.c.memory_id == str(memory_id)).order_by(audit_log.c.id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEntry(
                memory_kind=row["memory_kind"],
                memory_id=row["memory_id"],
                action=row["action"],
                detail=dict(row["detail"] or {}),
                at=row["at"],
            )
            for row in rows
        ]
