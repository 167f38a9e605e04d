"""Every other layer's tables: vector store, users and interactions, bandit, agent memory, API keys,
the pgvector collection registry and the `metamedia migrate` progress marks.

Before this revision each layer created its own tables with `metadata.create_all`, so databases
exist that already hold some or all of them (with their rows) while being at revision 0001. Such
tables are adopted, not recreated: each table is created only when the database does not have it
yet, and an adopted table only gets the indexes it is missing. A fresh database gets everything.

`pgvector_collections` (the registry of pgvector collections) is created on SQLite too: it stays
empty there, and one schema for both backends keeps the revision and its checks simple. The
per-collection point tables of pgvector and the faiss files are data-defined and not migrated.

The tables are spelled out here (first produced by Alembic's autogenerate against an empty
database) rather than read from the layers' MetaData, so a later model change cannot rewrite this
revision. Downgrade drops every table of this revision, adopted ones included, with their rows.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


class _Index(NamedTuple):
    name: str
    columns: Sequence[str]
    unique: bool = False


class _Table(NamedTuple):
    name: str
    elements: Sequence[sa.schema.SchemaItem]
    indexes: Sequence[_Index] = ()


def _tables() -> list[_Table]:
    """Every table of this revision, parents before children (fresh objects on every call)."""
    return [
        *_vector_tables(),
        *_recommend_tables(),
        *_bandit_tables(),
        *_memory_tables(),
        *_other_tables(),
    ]


def _vector_tables() -> list[_Table]:
    return [
        _Table(
            "vector_collections",
            [
                sa.Column("name", sa.String(64), nullable=False),
                sa.Column("config", sa.Text(), nullable=False),
                sa.Column("version", sa.BigInteger(), nullable=False),
                sa.PrimaryKeyConstraint("name"),
            ],
        ),
        _Table(
            "vector_points",
            [
                sa.Column("collection", sa.String(64), nullable=False),
                sa.Column("point_id", sa.BigInteger(), autoincrement=False, nullable=False),
                sa.Column("version", sa.BigInteger(), nullable=False),
                sa.Column("deleted", sa.Boolean(), nullable=False),
                sa.Column("vector", sa.LargeBinary(), nullable=True),
                sa.Column("payload", sa.Text(), nullable=True),
                sa.PrimaryKeyConstraint("collection", "point_id"),
            ],
            [_Index("ix_vector_points_version", ["collection", "version"])],
        ),
    ]


def _recommend_tables() -> list[_Table]:
    return [
        _Table(
            "rec_users",
            [
                sa.Column("id", sa.String(128), nullable=False),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.Column("last_seen", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
        ),
        _Table(
            "rec_interactions",
            [
                sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                sa.Column("user_id", sa.String(128), nullable=False),
                sa.Column("item_id", sa.Integer(), nullable=False),
                sa.Column("kind", sa.String(16), nullable=False),
                sa.Column("value", sa.Float(), nullable=True),
                sa.Column("scale", sa.String(8), nullable=True),
                sa.Column("completion", sa.Float(), nullable=True),
                sa.Column("watch_seconds", sa.Float(), nullable=True),
                sa.Column("strength", sa.Float(), nullable=False),
                sa.Column("context", sa.JSON(), nullable=True),
                sa.Column("idempotency_key", sa.String(200), nullable=True),
                sa.Column("decision_id", sa.String(64), nullable=True),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.ForeignKeyConstraint(["user_id"], ["rec_users.id"]),
                sa.PrimaryKeyConstraint("id"),
                sa.UniqueConstraint("user_id", "idempotency_key", name="uq_rec_interactions_key"),
            ],
            [
                _Index("ix_rec_interactions_item", ["item_id"]),
                _Index("ix_rec_interactions_user_time", ["user_id", "created_at"]),
            ],
        ),
        _Table(
            "rec_preferences",
            [
                sa.Column("user_id", sa.String(128), nullable=False),
                sa.Column("dim", sa.Integer(), nullable=False),
                sa.Column("vector", sa.LargeBinary(), nullable=False),
                sa.Column("evidence", sa.Float(), nullable=False),
                sa.Column("confidence", sa.Float(), nullable=False),
                sa.Column("genre_affinity", sa.JSON(), nullable=False),
                sa.Column("genre_evidence", sa.JSON(), nullable=False),
                sa.Column("genre_watches", sa.JSON(), nullable=False),
                sa.Column("counts", sa.JSON(), nullable=False),
                sa.Column("updated_at", sa.Float(), nullable=False),
                sa.ForeignKeyConstraint(["user_id"], ["rec_users.id"]),
                sa.PrimaryKeyConstraint("user_id"),
            ],
        ),
    ]


def _bandit_tables() -> list[_Table]:
    return [
        _Table(
            "bandit_arms",
            [
                sa.Column("name", sa.String(64), nullable=False),
                sa.Column("active", sa.Boolean(), nullable=False),
                sa.Column("prior_successes", sa.Float(), nullable=False),
                sa.Column("prior_failures", sa.Float(), nullable=False),
                sa.Column("added_at", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("name"),
            ],
        ),
        _Table(
            "bandit_stats",
            [
                sa.Column("bucket", sa.String(255), nullable=False),
                sa.Column("arm", sa.String(64), nullable=False),
                sa.Column("successes", sa.Float(), nullable=False),
                sa.Column("failures", sa.Float(), nullable=False),
                sa.Column("pulls", sa.Integer(), nullable=False),
                sa.PrimaryKeyConstraint("bucket", "arm"),
            ],
        ),
        _Table(
            "bandit_decisions",
            [
                sa.Column("id", sa.String(36), nullable=False),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.Column("user_id", sa.String(128), nullable=False),
                sa.Column("variant", sa.String(64), nullable=False),
                sa.Column("policy_version", sa.String(128), nullable=False),
                sa.Column("context", sa.JSON(), nullable=False),
                sa.Column("bucket", sa.String(255), nullable=False),
                sa.Column("eligible_arms", sa.JSON(), nullable=False),
                sa.Column("probabilities", sa.JSON(), nullable=False),
                sa.Column("arm", sa.String(64), nullable=False),
                sa.Column("propensity", sa.Float(), nullable=False),
                sa.Column("served_items", sa.JSON(), nullable=False),
                sa.Column("reward", sa.Float(), nullable=True),
                sa.Column("rewarded_at", sa.Float(), nullable=True),
                sa.PrimaryKeyConstraint("id"),
            ],
            [
                _Index("ix_bandit_decisions_created_at", ["created_at"]),
                _Index("ix_bandit_decisions_policy_version", ["policy_version"]),
                _Index("ix_bandit_decisions_user_id", ["user_id"]),
            ],
        ),
        _Table(
            "bandit_outcomes",
            [
                sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                sa.Column("decision_id", sa.String(36), nullable=False),
                sa.Column("kind", sa.String(16), nullable=False),
                sa.Column("value", sa.Float(), nullable=False),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.ForeignKeyConstraint(["decision_id"], ["bandit_decisions.id"]),
                sa.PrimaryKeyConstraint("id"),
            ],
            [_Index("ix_bandit_outcomes_decision_id", ["decision_id"])],
        ),
        _Table(
            "bandit_meta",
            [
                sa.Column("key", sa.String(64), nullable=False),
                sa.Column("value", sa.String(255), nullable=False),
                sa.PrimaryKeyConstraint("key"),
            ],
        ),
    ]


def _memory_tables() -> list[_Table]:
    return [
        _Table(
            "memory_strategies",
            [
                sa.Column("id", sa.String(120), nullable=False),
                sa.Column("family_id", sa.String(100), nullable=False),
                sa.Column("version", sa.Integer(), nullable=False),
                sa.Column("parent_id", sa.String(120), nullable=True),
                sa.Column("title", sa.String(300), nullable=False),
                sa.Column("description", sa.Text(), nullable=False),
                sa.Column("task_type", sa.String(100), nullable=False),
                sa.Column("tags", sa.JSON(), nullable=False),
                sa.Column("heuristics", sa.JSON(), nullable=False),
                sa.Column("checks", sa.JSON(), nullable=False),
                sa.Column("constraints", sa.JSON(), nullable=False),
                sa.Column("rule", sa.String(100), nullable=True),
                sa.Column("params", sa.JSON(), nullable=False),
                sa.Column("embedding", sa.LargeBinary(), nullable=False),
                sa.Column("uses", sa.Integer(), nullable=False),
                sa.Column("successes", sa.Integer(), nullable=False),
                sa.Column("reward_sum", sa.Float(), nullable=False),
                sa.Column("last_used_at", sa.Float(), nullable=True),
                sa.Column("status", sa.String(20), nullable=False),
                sa.Column("replaced_by", sa.String(120), nullable=True),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.Column("updated_at", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
            [
                _Index("ix_memory_strategies_family_id", ["family_id"]),
                _Index("ix_memory_strategies_status", ["status"]),
                _Index("ix_memory_strategies_task_type", ["task_type"]),
            ],
        ),
        _Table(
            "memory_episodes",
            [
                sa.Column("id", sa.String(64), nullable=False),
                sa.Column("session_id", sa.String(120), nullable=False),
                sa.Column("user_id", sa.String(120), nullable=False),
                sa.Column("task", sa.String(300), nullable=False),
                sa.Column("context", sa.JSON(), nullable=False),
                sa.Column("recommended", sa.JSON(), nullable=False),
                sa.Column("item_id", sa.String(120), nullable=True),
                sa.Column("item", sa.JSON(), nullable=False),
                sa.Column("factors", sa.JSON(), nullable=False),
                sa.Column("strategy_ids", sa.JSON(), nullable=False),
                sa.Column("action", sa.String(40), nullable=False),
                sa.Column("predicted_engagement", sa.Float(), nullable=False),
                sa.Column("actual_engagement", sa.Float(), nullable=False),
                sa.Column("reward", sa.Float(), nullable=False),
                sa.Column("success", sa.Boolean(), nullable=False),
                sa.Column("critique", sa.Text(), nullable=False),
                sa.Column("failure_keys", sa.JSON(), nullable=False),
                sa.Column("latency_ms", sa.Float(), nullable=False),
                sa.Column("embedding", sa.LargeBinary(), nullable=False),
                sa.Column("weight", sa.Integer(), nullable=False),
                sa.Column("status", sa.String(20), nullable=False),
                sa.Column("merged_into", sa.String(64), nullable=True),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
            [
                _Index("ix_memory_episodes_created_at", ["created_at"]),
                _Index("ix_memory_episodes_status", ["status"]),
                _Index("ix_memory_episodes_user_id", ["user_id"]),
            ],
        ),
        _Table(
            "memory_skills",
            [
                sa.Column("id", sa.String(64), nullable=False),
                sa.Column("signature", sa.String(500), nullable=False),
                sa.Column("name", sa.String(300), nullable=False),
                sa.Column("task", sa.String(300), nullable=False),
                sa.Column("description", sa.Text(), nullable=False),
                sa.Column("strategy_ids", sa.JSON(), nullable=False),
                sa.Column("context_tags", sa.JSON(), nullable=False),
                sa.Column("attempts", sa.Integer(), nullable=False),
                sa.Column("successes", sa.Integer(), nullable=False),
                sa.Column("mean_reward", sa.Float(), nullable=False),
                sa.Column("episode_ids", sa.JSON(), nullable=False),
                sa.Column("embedding", sa.LargeBinary(), nullable=False),
                sa.Column("status", sa.String(20), nullable=False),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.Column("updated_at", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
                sa.UniqueConstraint("signature"),
            ],
            [_Index("ix_memory_skills_task", ["task"])],
        ),
        _Table(
            "memory_user_genre_stats",
            [
                sa.Column("user_id", sa.String(120), nullable=False),
                sa.Column("genre", sa.String(60), nullable=False),
                sa.Column("shown", sa.Integer(), nullable=False),
                sa.Column("skipped", sa.Integer(), nullable=False),
                sa.Column("completed", sa.Integer(), nullable=False),
                sa.Column("completion_sum", sa.Float(), nullable=False),
                sa.Column("updated_at", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("user_id", "genre"),
            ],
        ),
        _Table(
            "memory_user_constraints",
            [
                sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                sa.Column("user_id", sa.String(120), nullable=False),
                sa.Column("kind", sa.String(60), nullable=False),
                sa.Column("subject", sa.String(120), nullable=False),
                sa.Column("value", sa.JSON(), nullable=False),
                sa.Column("reason", sa.Text(), nullable=False),
                sa.Column("evidence", sa.JSON(), nullable=False),
                sa.Column("status", sa.String(20), nullable=False),
                sa.Column("replaced_by", sa.Integer(), nullable=True),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.Column("updated_at", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
            [_Index("ix_memory_user_constraints_user_kind", ["user_id", "kind", "status"])],
        ),
        _Table(
            "memory_audit",
            [
                sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                sa.Column("memory_kind", sa.String(40), nullable=False),
                sa.Column("memory_id", sa.String(120), nullable=False),
                sa.Column("action", sa.String(40), nullable=False),
                sa.Column("detail", sa.JSON(), nullable=False),
                sa.Column("at", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
            [_Index("ix_memory_audit_memory_id", ["memory_id"])],
        ),
        _Table(
            "memory_causal_nodes",
            [
                sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                sa.Column("event_type", sa.String(100), nullable=False),
                sa.Column("label", sa.String(300), nullable=False),
                sa.Column("attrs", sa.JSON(), nullable=False),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
            [
                _Index("ix_memory_causal_nodes_event_type", ["event_type"]),
                _Index("ux_memory_causal_nodes_type_label", ["event_type", "label"], unique=True),
            ],
        ),
        _Table(
            "memory_causal_edges",
            [
                sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                sa.Column("signature", sa.String(500), nullable=False),
                sa.Column("effect_id", sa.Integer(), nullable=False),
                sa.Column("uplift", sa.Float(), nullable=False),
                sa.Column("confidence", sa.Float(), nullable=False),
                sa.Column("sample_size", sa.Integer(), nullable=False),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.Column("updated_at", sa.Float(), nullable=False),
                sa.ForeignKeyConstraint(["effect_id"], ["memory_causal_nodes.id"]),
                sa.PrimaryKeyConstraint("id"),
                sa.UniqueConstraint("signature"),
            ],
            [_Index("ix_memory_causal_edges_effect_id", ["effect_id"])],
        ),
        _Table(
            "memory_causal_edge_causes",
            [
                sa.Column("edge_id", sa.Integer(), nullable=False),
                sa.Column("node_id", sa.Integer(), nullable=False),
                sa.ForeignKeyConstraint(["edge_id"], ["memory_causal_edges.id"]),
                sa.ForeignKeyConstraint(["node_id"], ["memory_causal_nodes.id"]),
                sa.PrimaryKeyConstraint("edge_id", "node_id"),
            ],
        ),
        _Table(
            "memory_causal_weights",
            [
                sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                sa.Column("scope", sa.String(120), nullable=False),
                sa.Column("feature", sa.String(60), nullable=False),
                sa.Column("effect", sa.Float(), nullable=False),
                sa.Column("ci_low", sa.Float(), nullable=False),
                sa.Column("ci_high", sa.Float(), nullable=False),
                sa.Column("sample_size", sa.Integer(), nullable=False),
                sa.Column("method", sa.String(20), nullable=False),
                sa.Column("status", sa.String(20), nullable=False),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
            [_Index("ix_memory_causal_weights_scope", ["scope", "status"])],
        ),
        _Table(
            "memory_learner_runs",
            [
                sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
                sa.Column("started_at", sa.Float(), nullable=False),
                sa.Column("finished_at", sa.Float(), nullable=False),
                sa.Column("report", sa.JSON(), nullable=False),
                sa.PrimaryKeyConstraint("id"),
            ],
        ),
    ]


def _other_tables() -> list[_Table]:
    return [
        _Table(
            "api_keys",
            [
                sa.Column("id", sa.String(12), nullable=False),
                sa.Column("name", sa.String(200), nullable=False),
                sa.Column("secret_sha256", sa.String(64), nullable=False),
                sa.Column("scopes", sa.String(64), nullable=False),
                sa.Column("user_id", sa.String(128), nullable=True),
                sa.Column("created_at", sa.Float(), nullable=False),
                sa.Column("revoked_at", sa.Float(), nullable=True),
                sa.PrimaryKeyConstraint("id"),
            ],
        ),
        _Table(
            "pgvector_collections",
            [
                sa.Column("name", sa.String(64), nullable=False),
                sa.Column("config", sa.Text(), nullable=False),
                sa.PrimaryKeyConstraint("name"),
            ],
        ),
        _Table(
            "metamedia_migration_progress",
            [
                sa.Column("table_name", sa.String(128), nullable=False),
                sa.Column("last_key", sa.Text(), nullable=True),
                sa.Column("rows_copied", sa.BigInteger(), nullable=False),
                sa.Column("done", sa.Boolean(), nullable=False),
                sa.PrimaryKeyConstraint("table_name"),
            ],
        ),
    ]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = set(inspector.get_table_names())
    for table in _tables():
        wanted: Sequence[_Index]
        if table.name in present:
            have = {ix["name"] for ix in inspector.get_indexes(table.name)}
            wanted = [ix for ix in table.indexes if ix.name not in have]
        else:
            op.create_table(table.name, *table.elements)
            wanted = table.indexes
        for ix in wanted:
            op.create_index(ix.name, table.name, ix.columns, unique=ix.unique)


def downgrade() -> None:
    for table in reversed(_tables()):
        op.drop_table(table.name)
