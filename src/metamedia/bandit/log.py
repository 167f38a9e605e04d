"""The bandit's tables in the store of record (SQLAlchemy Core, portable SQL): arms, posterior
counts, the decision log and the outcome events joined to it later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
)

from ..store.migrations import upgrade_schema
from .policy import PosteriorTable

metadata = MetaData()

arms_table = Table(
    "bandit_arms",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("active", Boolean, nullable=False),
    Column("prior_successes", Float, nullable=False),
    Column("prior_failures", Float, nullable=False),
    Column("added_at", Float, nullable=False),
)

stats_table = Table(
    "bandit_stats",
    metadata,
    Column("bucket", String(255), primary_key=True),
    Column("arm", String(64), primary_key=True),
    Column("successes", Float, nullable=False),
    Column("failures", Float, nullable=False),
    Column("pulls", Integer, nullable=False),
)

decisions_table = Table(
    "bandit_decisions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("user_id", String(128), nullable=False, index=True),
    Column("variant", String(64), nullable=False),
    Column("policy_version", String(128), nullable=False, index=True),
    Column("context", JSON, nullable=False),
    Column("bucket", String(255), nullable=False),
    Column("eligible_arms", JSON, nullable=False),
    Column("probabilities", JSON, nullable=False),
    Column("arm", String(64), nullable=False),
    Column("propensity", Float, nullable=False),
    Column("served_items", JSON, nullable=False),
    # item id (text) -> {"score", "strategy_ids"}: what agent memory credits when a served item is
    # skipped or watched, whichever server process the interaction reaches (migration 0007)
    Column("served_detail", JSON, nullable=True),
    Column("reward", Float, nullable=True),
    Column("rewarded_at", Float, nullable=True),
)

outcomes_table = Table(
    "bandit_outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(36), ForeignKey("bandit_decisions.id"), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("value", Float, nullable=False),
    Column("created_at", Float, nullable=False),
)

meta_table = Table(
    "bandit_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)


def create_tables(engine: Engine) -> None:
    """Bring the schema, the bandit tables included, to the newest migration (idempotent)."""
    upgrade_schema(engine)


def load_posteriors(conn: Connection) -> PosteriorTable:
    """Every arm's prior and counts, as the in-memory table the policy samples from."""
    table = PosteriorTable()
    for row in conn.execute(select(arms_table)):
        table.priors[row.name] = (row.prior_successes, row.prior_failures)
    for row in conn.execute(select(stats_table)):
        table.add(row.bucket, row.arm, row.successes, row.failures, row.pulls)
    return table


def add_counts(
    conn: Connection, bucket: str, arm: str, successes: float, failures: float, pulls: int
) -> None:
    """Add to one (bucket, arm) cell, creating it when missing (an update-or-insert that any SQL runs)."""
    c = stats_table.c
    updated = conn.execute(
        stats_table.update()
        .where(c.bucket == bucket, c.arm == arm)
        .values(successes=c.successes + successes, failures=c.failures + failures, pulls=c.pulls + pulls)
    )
    if updated.rowcount == 0:
        conn.execute(
            stats_table.insert().values(
                bucket=bucket, arm=arm, successes=successes, failures=failures, pulls=pulls
            )
        )


def get_meta(conn: Connection, key: str, default: str) -> str:
    value = conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).scalar()
    return default if value is None else str(value)


def set_meta(conn: Connection, key: str, value: str) -> None:
    updated = conn.execute(meta_table.update().where(meta_table.c.key == key).values(value=value))
    if updated.rowcount == 0:
        conn.execute(meta_table.insert().values(key=key, value=value))


def selection_counts(conn: Connection) -> dict[str, int]:
    """How many logged decisions chose each arm."""
    rows = conn.execute(select(decisions_table.c.arm, func.count()).group_by(decisions_table.c.arm))
    return {arm: int(n) for arm, n in rows}


def rewarded_decisions(
    conn: Connection, *, policy_version: str | None = None, limit: int | None = None
) -> Sequence[Any]:
    """Decisions whose reward is known, oldest first (optionally one policy version, the latest ``limit``)."""
    query = select(decisions_table).where(decisions_table.c.reward.is_not(None))
    if policy_version is not None:
        query = query.where(decisions_table.c.policy_version == policy_version)
    if limit is not None:
        query = query.order_by(decisions_table.c.created_at.desc()).limit(limit)
        return list(reversed(conn.execute(query).all()))
    return conn.execute(query.order_by(decisions_table.c.created_at)).all()
