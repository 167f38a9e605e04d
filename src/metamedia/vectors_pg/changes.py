"""The change log of pgvector collections: every write, numbered, in the transaction that made it.

Readers that keep their own copy of a collection (the index shard replicas of a Ray deployment,
`metamedia.distributed`) pull changes after the sequence number they have applied and fetch the
current rows of the ids named; they never depend on a broadcast reaching them.

Each write takes a transaction-level advisory lock before it draws its number, so numbers are
handed out in commit order: a reader that has seen change `n` has seen every change below `n`
(with a bare `bigserial`, a later number can commit before an earlier one and be skipped).
The table is created by the schema migrations (revision 0005).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import JSON, BigInteger, Column, Index, MetaData, String, Table, func, insert, select, text
from sqlalchemy.engine import Connection

UPSERT = "upsert"
DELETE = "delete"
# One constant key for pg_advisory_xact_lock: the writers of every collection in this database.
_LOCK_SQL = text("SELECT pg_advisory_xact_lock(hashtext('metamedia_vector_changes'))")

_md = MetaData()
vector_changes = Table(
    "vector_changes",
    _md,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),  # bigserial
    Column("collection", String(64), nullable=False),
    Column("op", String(8), nullable=False),
    Column("ids", JSON, nullable=False),
    Index("vector_changes_collection_seq", "collection", "seq"),
)


@dataclass(frozen=True)
class Change:
    """One committed write: its sequence number, `upsert` or `delete`, and the point ids."""

    seq: int
    op: str
    ids: tuple[int, ...]


def log_change(conn: Connection, collection: str, op: str, ids: Sequence[int]) -> int:
    """Record a write inside the caller's transaction; returns its sequence number."""
    conn.execute(_LOCK_SQL)
    seq = conn.execute(
        insert(vector_changes)
        .values(collection=collection, op=op, ids=[int(i) for i in ids])
        .returning(vector_changes.c.seq)
    ).scalar_one()
    return int(seq)


def latest_seq(conn: Connection, collection: str) -> int:
    """The newest committed change of a collection visible to this transaction (0 when none)."""
    value = conn.execute(
        select(func.max(vector_changes.c.seq)).where(vector_changes.c.collection == collection)
    ).scalar()
    return int(value or 0)


def read_changes(conn: Connection, collection: str, after: int, limit: int = 1000) -> list[Change]:
    """Changes of a collection numbered above `after`, oldest first, at most `limit`."""
    rows = conn.execute(
        select(vector_changes.c.seq, vector_changes.c.op, vector_changes.c.ids)
        .where(vector_changes.c.collection == collection, vector_changes.c.seq > after)
        .order_by(vector_changes.c.seq)
        .limit(limit)
    ).all()
    return [Change(int(seq), str(op), tuple(int(i) for i in ids)) for seq, op, ids in rows]
