"""Per-user memory: genre engagement counts and constraints learned from feedback."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from ..errors import InvalidInput, NotFound
from .audit import AuditEntry, AuditLog
from .base import Clock, wall_clock
from .schema import create_memory_tables, user_constraints, user_genre_stats

CONSTRAINT_KINDS = ("exclude_genre", "min_rating", "max_runtime")


@dataclass(frozen=True)
class UserConstraint:
    """A belief about one user that the reranker enforces, with the evidence behind it."""

    id: int
    user_id: str
    kind: str
    subject: str
    value: Any
    reason: str
    evidence: dict[str, Any]
    status: str
    replaced_by: int | None
    created_at: float


def _row_to_constraint(row: Any) -> UserConstraint:
    return UserConstraint(
        id=row["id"], user_id=row["user_id"], kind=row["kind"], subject=row["subject"], value=row["value"],
        reason=row["reason"], evidence=dict(row["evidence"]), status=row["status"],
        replaced_by=row["replaced_by"], created_at=row["created_at"],
    )  # fmt: skip


class UserMemory:
    """Genre stats (shown / skipped / completed per genre) and active constraints, per user."""

    def __init__(self, engine: Engine, *, clock: Clock = wall_clock, audit: AuditLog | None = None) -> None:
        self.engine = engine
        self.clock = clock
        self.audit = audit or AuditLog(engine, clock)
        create_memory_tables(engine)

    def record_engagement(self, user_id: str, genres: list[str], *, skipped: bool, completion: float) -> None:
        """Count one pick of an item with these genres and how it went."""
        if not 0.0 <= completion <= 1.0:
            raise InvalidInput(f"completion must be within 0..1, got {completion}")
        now = self.clock()
        with self.engine.begin() as conn:
            for genre in dict.fromkeys(genres):
                key = (user_genre_stats.c.user_id == user_id) & (user_genre_stats.c.genre == genre)
                values = {
                    "shown": user_genre_stats.c.shown + 1,
                    "skipped": user_genre_stats.c.skipped + (1 if skipped else 0),
                    "completed": user_genre_stats.c.completed + (1 if completion >= 0.8 else 0),
                    "completion_sum": user_genre_stats.c.completion_sum + completion,
                    "updated_at": now,
                }
                if conn.execute(update(user_genre_stats).where(key).values(**values)).rowcount == 0:
                    conn.execute(
                        insert(user_genre_stats).values(
                            user_id=user_id,
                            genre=genre,
                            shown=1,
                            skipped=1 if skipped else 0,
                            completed=1 if completion >= 0.8 else 0,
                            completion_sum=completion,
                            updated_at=now,
                        )  # fmt: skip
                    )

    def genre_stats(self, user_id: str) -> dict[str, dict[str, float]]:
        """{genre: {shown, skipped, completed, completion_sum}} for one user."""
        query = select(user_genre_stats).where(user_genre_stats.c.user_id == user_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return {
            r["genre"]: {
                "shown": r["shown"],
                "skipped": r["skipped"],
                "completed": r["completed"],
                "completion_sum": r["completion_sum"],
            }  # fmt: skip
            for r in rows
        }

    def reset_genre(
        self, conn: Connection, user_id: str, genre: str, *, shown: int, completed: int, completion_sum: float
    ) -> None:
        """Replace one genre's counts by newer evidence (the old counts stay in the audit trail)."""
        conn.execute(
            update(user_genre_stats)
            .where((user_genre_stats.c.user_id == user_id) & (user_genre_stats.c.genre == genre))
            .values(
                shown=shown,
                skipped=0,
                completed=completed,
                completion_sum=completion_sum,
                updated_at=self.clock(),
            )
        )

    def add_constraint(
        self, user_id: str, kind: str, subject: str, value: Any, *, reason: str, evidence: dict[str, Any]
    ) -> UserConstraint:
        """Add a constraint; an active one of the same kind and subject is superseded, not deleted."""
        if kind not in CONSTRAINT_KINDS:
            raise InvalidInput(f"unknown constraint kind {kind!r}; known: {list(CONSTRAINT_KINDS)}")
        now = self.clock()
        with self.engine.begin() as conn:
            old = self._active(conn, user_id, kind, subject)
            new_id = conn.execute(
                insert(user_constraints).values(
                    user_id=user_id,
                    kind=kind,
                    subject=subject,
                    value=value,
                    reason=reason,
                    evidence=evidence,
                    status="active",
                    created_at=now,
                    updated_at=now,
                )  # fmt: skip
            ).inserted_primary_key[0]  # type: ignore[index]
            self.audit.record(
                conn, "constraint", f"constraint:{new_id}", "created", {"reason": reason, **evidence}
            )
            for row in old:
                self._close(conn, row.id, "superseded", new_id, f"replaced by constraint {new_id}: {reason}")
        return self.get_constraint(int(new_id))

    def retract_constraint(
        self, constraint_id: int, *, reason: str, evidence: dict[str, Any]
    ) -> UserConstraint:
        """Stop enforcing a constraint because newer evidence contradicts it; its row and history stay."""
        with self.engine.begin() as conn:
            self._close(conn, constraint_id, "superseded", None, reason, evidence)
        return self.get_constraint(constraint_id)

    def _active(self, conn: Connection, user_id: str, kind: str, subject: str) -> list[UserConstraint]:
        query = select(user_constraints).where(
            (user_constraints.c.user_id == user_id)
            & (user_constraints.c.kind == kind)
            & (user_constraints.c.subject == subject)
            & (user_constraints.c.status == "active")
        )
        return [_row_to_constraint(r) for r in conn.execute(query).mappings()]

    def _close(
        self, conn: Connection, constraint_id: int, status: str, replaced_by: int | None, reason: str,
        evidence: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        conn.execute(
            update(user_constraints)
            .where(user_constraints.c.id == constraint_id)
            .values(status=status, replaced_by=replaced_by, updated_at=self.clock())
        )
        detail = {"reason": reason, "replaced_by": replaced_by, **(evidence or {})}
        self.audit.record(conn, "constraint", f"constraint:{constraint_id}", status, detail)

    def get_constraint(self, constraint_id: int) -> UserConstraint:
        with self.engine.connect() as conn:
            row = (
                conn.execute(select(user_constraints).where(user_constraints.c.id == constraint_id))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"no constraint {constraint_id}")
        return _row_to_constraint(row)

    def constraints(self, user_id: str, *, active_only: bool = True) -> list[UserConstraint]:
        """A user's constraints, oldest first."""
        query = (
            select(user_constraints)
            .where(user_constraints.c.user_id == user_id)
            .order_by(user_constraints.c.id)
        )
        if active_only:
            query = query.where(user_constraints.c.status == "active")
        with self.engine.connect() as conn:
            return [_row_to_constraint(r) for r in conn.execute(query).mappings()]

    def history(self, constraint_id: int) -> list[AuditEntry]:
        """Audit trail of one constraint."""
        return self.audit.history(f"constraint:{constraint_id}")

    def user_stats(self, user_id: str) -> dict[str, Any]:
        """What the rules read about a user from memory: genre stats and constraint-derived limits."""
        stats: dict[str, Any] = {"genre_stats": self.genre_stats(user_id)}
        for c in self.constraints(user_id):
            if c.kind == "min_rating":
                stats["min_rating"] = max(float(c.value), float(stats.get("min_rating", c.value)))
            elif c.kind == "exclude_genre":
                stats.setdefault("excluded_genres", {})[c.subject] = c.reason
            elif c.kind == "max_runtime":
                stats["max_runtime"] = int(c.value)
        return stats
