"""PointStore: reads and writes of the store-of-record tables. Every write is one transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, and_, delete, func, insert, select, update

from ..errors import CollectionNotFound, Conflict
from ..store.migrations import upgrade_schema
from .config import CollectionConfig
from .schema import collections, points

_IN_CHUNK = 1000
_READ_CHUNK = 5000


@dataclass
class PointRows:
    """A batch of rows read from the store (vectors/payloads are empty for deleted rows)."""

    ids: np.ndarray
    versions: np.ndarray
    deleted: np.ndarray
    vectors: np.ndarray
    payloads: list[dict[str, Any]]


def encode_payload(payload: dict[str, Any]) -> str | None:
    return json.dumps(payload, allow_nan=False, separators=(",", ":"), sort_keys=True) if payload else None


def decode_payload(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


class PointStore:
    """The SQL side of every collection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        upgrade_schema(engine)

    def catalog(self) -> list[tuple[CollectionConfig, int]]:
        """Every collection's config and committed version."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(collections.c.config, collections.c.version).order_by(collections.c.name)
            )
            return [(CollectionConfig.from_dict(json.loads(c)), int(v)) for c, v in rows]

    def version(self, name: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(collections.c.version).where(collections.c.name == name)).scalar()
        if value is None:
            raise CollectionNotFound(f"collection {name!r} does not exist", {"collection": name})
        return int(value)

    def add_collection(self, config: CollectionConfig, version: int = 0) -> None:
        with self.engine.begin() as conn:
            exists = conn.execute(select(collections.c.name).where(collections.c.name == config.name)).first()
            if exists:
                raise Conflict(f"collection {config.name!r} already exists", {"collection": config.name})
            conn.execute(
                insert(collections).values(
                    name=config.name, config=json.dumps(config.to_dict()), version=version
                )
            )

    def save_config(self, config: CollectionConfig) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(collections)
                .where(collections.c.name == config.name)
                .values(config=json.dumps(config.to_dict()))
            )

    def drop_collection(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(points).where(points.c.collection == name))
            conn.execute(delete(collections).where(collections.c.name == name))

    def _bump(self, conn: Connection, name: str, expected: int) -> int:
        result = conn.execute(
            update(collections)
            .where(and_(collections.c.name == name, collections.c.version == expected))
            .values(version=expected + 1)
        )
        if result.rowcount != 1:
            raise Conflict(
                f"collection {name!r} was changed or dropped by another writer; reopen the database",
                {"collection": name},
            )
        return expected + 1

    def write_upsert(
        self,
        name: str,
        expected: int,
        ids: np.ndarray,
        vectors: np.ndarray,
        payloads: Sequence[dict[str, Any]],
    ) -> int:
        """Replace the rows of `ids` in one transaction; returns the new collection version."""
        with self.engine.begin() as conn:
            version = self._bump(conn, name, expected)
            self._delete_rows(conn, name, ids)
            little = vectors.astype("<f4", copy=False)
            conn.execute(
                insert(points),
                [
                    {
                        "collection": name,
                        "point_id": int(point_id),
                        "version": version,
                        "deleted": False,
                        "vector": little[i].tobytes(),
                        "payload": encode_payload(payloads[i]),
                    }
                    for i, point_id in enumerate(ids)
                ],
            )
        return version

    def write_delete(self, name: str, expected: int, ids: np.ndarray) -> int:
        """Mark `ids` deleted (rows kept as tombstones) in one transaction; returns the new version."""
        with self.engine.begin() as conn:
            version = self._bump(conn, name, expected)
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = [int(i) for i in ids[start : start + _IN_CHUNK]]
                conn.execute(
                    update(points)
                    .where(and_(points.c.collection == name, points.c.point_id.in_(chunk)))
                    .values(deleted=True, vector=None, payload=None, version=version)
                )
        return version

    def _delete_rows(self, conn: Connection, name: str, ids: np.ndarray) -> None:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = [int(i) for i in ids[start : start + _IN_CHUNK]]
            conn.execute(
                delete(points).where(and_(points.c.collection == name, points.c.point_id.in_(chunk)))
            )

    def rows(
        self, name: str, dim: int, since_version: int | None = None, alive_only: bool = False
    ) -> Iterator[PointRows]:
        """Rows in (version, id) order, in batches; `since_version` keeps only newer rows."""
        query = select(
            points.c.point_id, points.c.version, points.c.deleted, points.c.vector, points.c.payload
        ).where(points.c.collection == name)
        if since_version is not None:
            query = query.where(points.c.version > since_version)
        if alive_only:
            query = query.where(
                points.c.deleted.is_(False),
            )
        query = query.order_by(points.c.version, points.c.point_id)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(query)
            for batch in result.partitions(_READ_CHUNK):
                yield _to_rows(batch, dim)

    def count(self, name: str) -> int:
        """Live (not deleted) points of a collection."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.count())
                .select_from(points)
                .where(
                    and_(
                        points.c.collection == name,
                        points.c.deleted.is_(False),
                    )
                )
            ).scalar()
        return int(value or 0)

    def ids(self, name: str) -> np.ndarray:
        """Sorted ids of the live points."""
        with self.engine.connect() as conn:
            values = (
                conn.execute(
                    select(points.c.point_id).where(
                        and_(
                            points.c.collection == name,
                            points.c.deleted.is_(False),
                        )
                    )
                )
                .scalars()
                .all()
            )
        return np.sort(np.array(values, dtype=np.int64))

    def fetch(self, name: str, ids: Sequence[int], dim: int) -> dict[int, tuple[np.ndarray, dict[str, Any]]]:
        """Vector and payload of each live id found."""
        found: dict[int, tuple[np.ndarray, dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = [int(i) for i in ids[start : start + _IN_CHUNK]]
                rows = conn.execute(
                    select(points.c.point_id, points.c.vector, points.c.payload).where(
                        and_(
                            points.c.collection == name,
                            points.c.deleted.is_(False),
                            points.c.point_id.in_(chunk),
                        )
                    )
                )
                for point_id, blob, payload in rows:
                    found[int(point_id)] = (
                        np.frombuffer(blob, dtype="<f4").astype(np.float32),
                        decode_payload(payload),
                    )
        return found

    def purge_deleted(self, name: str, through_version: int) -> int:
        """Drop tombstone rows no snapshot needs any more; returns how many."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(points).where(
                    and_(
                        points.c.collection == name,
                        points.c.deleted.is_(True),
                        points.c.version <= through_version,
                    )
                )
            )
        return int(result.rowcount or 0)

    def replace_collection(
        self, config: CollectionConfig, version: int, batches: Iterator[PointRows]
    ) -> None:
        """Drop and rewrite a collection's rows in one transaction (restore)."""
        with self.engine.begin() as conn:
            conn.execute(delete(points).where(points.c.collection == config.name))
            conn.execute(delete(collections).where(collections.c.name == config.name))
            conn.execute(
                insert(collections).values(
                    name=config.name, config=json.dumps(config.to_dict()), version=version
                )
            )
            for batch in batches:
                if not len(batch.ids):
                    continue
                conn.execute(
                    insert(points),
                    [
                        {
                            "collection": config.name,
                            "point_id": int(point_id),
                            "version": int(batch.versions[i]),
                            "deleted": False,
                            "vector": batch.vectors[i].astype("<f4").tobytes(),
                            "payload": encode_payload(batch.payloads[i]),
                        }
                        for i, point_id in enumerate(batch.ids)
                    ],
                )


def _to_rows(batch: Sequence[Any], dim: int) -> PointRows:
    n = len(batch)
    ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=n)
    versions = np.fromiter((r[1] for r in batch), dtype=np.int64, count=n)
    deleted = np.fromiter((bool(r[2]) for r in batch), dtype=bool, count=n)
    vectors = np.zeros((n, dim), dtype=np.float32)
    for i, row in enumerate(batch):
        if row[3] is not None:
            vectors[i] = np.frombuffer(row[3], dtype="<f4")
    payloads = [decode_payload(r[4]) for r in batch]
    return PointRows(ids, versions, deleted, vectors, payloads)
