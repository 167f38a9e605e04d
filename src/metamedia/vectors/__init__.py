"""metamedia.vectors: a persistent vector store (faiss HNSW over a SQL store of record).

    from metamedia.vectors import VectorDB, CollectionConfig, Hit
    db = VectorDB(sqlalchemy.create_engine(url), data_dir)
    col = db.create_collection(CollectionConfig(name="media", dim=384, metric="cosine"))
    col.upsert([1, 2], vectors, [{"year": 1999}, {"year": 2004}])
    col.search(query, k=10, filter={"must": [{"field": "year", "range": {"gte": 2000}}]})

Scores: cosine = cosine similarity, dot = inner product (higher is better); l2 = Euclidean
distance, not squared; manhattan = L1 distance (lower is better). `threshold` keeps hits with
score >= threshold for similarities, <= threshold for distances. See `filters` for the filter
language and `planner` for how filtered searches run.
"""

from .base import Hit
from .collection import Collection
from .compact import CompactCollection
from .config import CollectionConfig
from .db import VectorDB

__all__ = ["Collection", "CollectionConfig", "CompactCollection", "Hit", "VectorDB"]
