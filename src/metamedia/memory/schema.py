"""SQL tables of the agent memory (SQLAlchemy Core, portable types, its own MetaData)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from ..store.migrations import upgrade_schema

memory_metadata = MetaData()

strategies = Table(
    "memory_strategies",
    memory_metadata,
    Column("id", String(120), primary_key=True),
    Column("family_id", String(100), nullable=False, index=True),
    Column("version", Integer, nullable=False, default=1),
    Column("parent_id", String(120), nullable=True),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("task_type", String(100), nullable=False, index=True),
    Column("tags", JSON, nullable=False),
    Column("heuristics", JSON, nullable=False),
    Column("checks", JSON, nullable=False),
    Column("constraints", JSON, nullable=False),
    Column("rule", String(100), nullable=True),
    Column("params", JSON, nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Column("uses", Integer, nullable=False, default=0),
    Column("successes", Integer, nullable=False, default=0),
    Column("reward_sum", Float, nullable=False, default=0.0),
    Column("last_used_at", Float, nullable=True),
    Column("status", String(20), nullable=False, default="active", index=True),
    Column("replaced_by", String(120), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

episodes = Table(
    "memory_episodes",
    memory_metadata,
    Column("id", String(64), primary_key=True),
    Column("session_id", String(120), nullable=False, default=""),
    Column("user_id", String(120), nullable=False, default="", index=True),
    Column("task", String(300), nullable=False),
    Column("context", JSON, nullable=False),
    Column("recommended", JSON, nullable=False),
    Column("item_id", String(120), nullable=True),
    Column("item", JSON, nullable=False),
    Column("factors", JSON, nullable=False),
    Column("strategy_ids", JSON, nullable=False),
    Column("action", String(40), nullable=False, default=""),
    Column("predicted_engagement", Float, nullable=False),
    Column("actual_engagement", Float, nullable=False),
    Column("reward", Float, nullable=False),
    Column("success", Boolean, nullable=False),
    Column("critique", Text, nullable=False, default=""),
    Column("failure_keys", JSON, nullable=False),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("embedding", LargeBinary, nullable=False),
    Column("weight", Integer, nullable=False, default=1),
    Column("status", String(20), nullable=False, default="active", index=True),
    Column("merged_into", String(64), nullable=True),
    Column("created_at", Float, nullable=False, index=True),
)

skills = Table(
    "memory_skills",
    memory_metadata,
    Column("id", String(64), primary_key=True),
    Column("signature", String(500), nullable=False, unique=True),
    Column("name", String(300), nullable=False),
    Column("task", String(300), nullable=False, index=True),
    Column("description", Text, nullable=False),
    Column("strategy_ids", JSON, nullable=False),
    Column("context_tags", JSON, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("successes", Integer, nullable=False),
    Column("mean_reward", Float, nullable=False),
    Column("episode_ids", JSON, nullable=False),
    Column("embedding", LargeBinary, nullable=False),
    Column("status", String(20), nullable=False, default="active"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

user_genre_stats = Table(
    "memory_user_genre_stats",
    memory_metadata,
    Column("user_id", String(120), primary_key=True),
    Column("genre", String(60), primary_key=True),
    Column("shown", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("completed", Integer, nullable=False, default=0),
    Column("completion_sum", Float, nullable=False, default=0.0),
    Column("updated_at", Float, nullable=False),
)

user_constraints = Table(
    "memory_user_constraints",
    memory_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(120), nullable=False),
    Column("kind", String(60), nullable=False),
    Column("subject", String(120), nullable=False, default=""),
    Column("value", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="active"),
    Column("replaced_by", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_memory_user_constraints_user_kind", "user_id", "kind", "status"),
)

audit_log = Table(
    "memory_audit",
    memory_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("memory_kind", String(40), nullable=False),
    Column("memory_id", String(120), nullable=False, index=True),
    Column("action", String(40), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("at", Float, nullable=False),
)

causal_nodes = Table(
    "memory_causal_nodes",
    memory_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_type", String(100), nullable=False, index=True),
    Column("label", String(300), nullable=False),
    Column("attrs", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ux_memory_causal_nodes_type_label", "event_type", "label", unique=True),
)

causal_edges = Table(
    "memory_causal_edges",
    memory_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("signature", String(500), nullable=False, unique=True),
    Column("effect_id", Integer, ForeignKey("memory_causal_nodes.id"), nullable=False, index=True),
    Column("uplift", Float, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("sample_size", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)

causal_edge_causes = Table(
    "memory_causal_edge_causes",
    memory_metadata,
    Column("edge_id", Integer, ForeignKey("memory_causal_edges.id"), primary_key=True),
    Column("node_id", Integer, ForeignKey("memory_causal_nodes.id"), primary_key=True),
)

causal_weights = Table(
    "memory_causal_weights",
    memory_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("scope", String(120), nullable=False),
    Column("feature", String(60), nullable=False),
    Column("effect", Float, nullable=False),
    Column("ci_low", Float, nullable=False),
    Column("ci_high", Float, nullable=False),
    Column("sample_size", Integer, nullable=False),
    Column("method", String(20), nullable=False),
    Column("status", String(20), nullable=False, default="active"),
    Column("created_at", Float, nullable=False),
    Index("ix_memory_causal_weights_scope", "scope", "status"),
)

learner_runs = Table(
    "memory_learner_runs",
    memory_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    Column("report", JSON, nullable=False),
)


def create_memory_tables(engine: Engine) -> None:
    """Bring the schema, every memory table included, to the newest migration (idempotent)."""
    upgrade_schema(engine)
