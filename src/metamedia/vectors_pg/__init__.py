"""Vector collections inside PostgreSQL (pgvector), with the same methods as metamedia.vectors."""

from .collection import PgCollection
from .db import PgVectorDB

__all__ = ["PgCollection", "PgVectorDB"]
