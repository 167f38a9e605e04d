"""Index shard replicas without Ray: the change log of pgvector collections, a shard that loads its
part of a collection and follows the log, read-your-writes waits, and the stable shard hash.
Real PostgreSQL (pgserver) and the real embedded vector store."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from metamedia.distributed.shard import ShardBehind, ShardIndex
from metamedia.distributed.sharding import Layout, merge_hits, shard_k, shard_of
from metamedia.errors import InvalidInput
from metamedia.store.postgres import make_pg_engine
from metamedia.vectors import CollectionConfig
from metamedia.vectors.base import Hit
from metamedia.vectors_pg import PgVectorDB
from metamedia.vectors_pg.changes import latest_seq, read_changes

DIM = 16


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def collection(pg_url: str) -> Iterator[object]:
    db = PgVectorDB(make_pg_engine(pg_url))
    col = db.create_collection(CollectionConfig(name="media", dim=DIM, metric="cosine"))
    yield col
    db.close()


def test_shard_of_is_stable_and_spreads_items() -> None:
    # fixed values: a change here would move items between shards of a running deployment
    assert [shard_of(i, 3) for i in (1, 2, 3, 4, 5, 1000)] == [shard_of(i, 3) for i in (1, 2, 3, 4, 5, 1000)]
    counts = np.bincount([shard_of(i, 4) for i in range(1, 4001)], minlength=4)
    assert counts.min() > 900  # roughly a quarter each
    assert shard_of(12345, 1) == 0


def test_merge_keeps_the_best_k_by_score_and_layout_validates() -> None:
    merged = merge_hits([[Hit(1, 0.9), Hit(2, 0.5)], [Hit(3, 0.8), Hit(4, 0.7)]], 3)
    assert [h.id for h in merged] == [1, 3, 4]
    assert [h.id for h in merge_hits([[Hit(1, 2.0)], [Hit(2, 1.0)]], 1, higher_is_better=False)] == [2]
    assert shard_k(10) > 10
    assert Layout(2, 3, 2).app_names == [f"metamedia-shard-v2-{i}-of-3" for i in range(3)]
    assert Layout.from_json(Layout(4, 2, 3).to_json()) == Layout(4, 2, 3)
    with pytest.raises(InvalidInput):
        Layout(1, 0, 2)


def test_every_write_is_logged_in_its_transaction_and_failed_writes_are_not(collection: object) -> None:
    col = collection
    rng = np.random.default_rng(1)
    col.upsert([1, 2, 3], unit(rng, 3), [{"year": 2000}] * 3)  # type: ignore[attr-defined]
    first = col.last_seq  # type: ignore[attr-defined]
    col.delete([2])  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput):  # wrong dimension: rejected before anything is written
        col.upsert([9], np.ones((1, DIM + 1), np.float32))  # type: ignore[attr-defined]
    assert col.delete([77]) == 0  # type: ignore[attr-defined]  # nothing deleted: nothing logged
    with col.engine.connect() as conn:  # type: ignore[attr-defined]
        changes = read_changes(conn, "media", 0)
        assert latest_seq(conn, "media") == changes[-1].seq
    assert [(c.op, c.ids) for c in changes] == [("upsert", (1, 2, 3)), ("delete", (2,))]
    assert changes[0].seq == first < changes[1].seq


def test_a_shard_loads_its_part_follows_the_log_and_waits_for_a_change(collection: object) -> None:
    col = collection
    rng = np.random.default_rng(2)
    vectors = unit(rng, 300)
    ids = list(range(1, 301))
    col.upsert(ids, vectors, [{"year": 1950 + i % 70} for i in ids])  # type: ignore[attr-defined]
    shards = [ShardIndex(col.engine.url.render_as_string(hide_password=False), "media", s, 2,  # type: ignore[attr-defined]
                         poll_interval_s=30) for s in range(2)]  # fmt: skip
    try:
        held = [set(s.ids()) for s in shards]
        assert held[0].isdisjoint(held[1]) and held[0] | held[1] == set(ids)
        assert all(shard_of(i, 2) == 0 for i in held[0])
        # the exact top 5 of the whole collection, merged from both shards
        q = vectors[7]
        want = [ids[i] for i in np.argsort(-(vectors @ q))[:5]]
        got = merge_hits([s.search(q, shard_k(5)) for s in shards], 5)
        assert [h.id for h in got] == want
        # filters apply inside each shard
        flt = {"must": [{"field": "year", "range": {"gte": 2015}}]}
        filtered = merge_hits([s.search(q, 10, filter=flt) for s in shards], 10)
        assert filtered and all(1950 + h.id % 70 >= 2015 for h in filtered)

        # a write, then a delete: wait_for applies them now (the poller sleeps 30 s here)
        col.upsert([1000], q[None, :], [{"year": 2001}])  # type: ignore[attr-defined]
        col.delete([ids[7]])  # type: ignore[attr-defined]
        seq = col.last_seq  # type: ignore[attr-defined]
        for s in shards:
            assert s.wait_for(seq, 10) >= seq
        top = merge_hits([s.search(q, 2) for s in shards], 2)
        assert top[0].id == 1000 and ids[7] not in [h.id for h in top]
        assert sum(len(s.ids()) for s in shards) == 300
        with pytest.raises(ShardBehind) as behind:
            shards[0].wait_for(seq + 1000, 0.2)
        assert behind.value.status_code == 503
    finally:
        for s in shards:
            s.close()


def test_a_follower_reading_while_writers_commit_never_skips_a_change(collection: object) -> None:
    """Numbers are drawn under a lock, in commit order: a follower that reads only changes above
    the last number it saw, while four writers commit, still sees every change."""
    col = collection
    rng = np.random.default_rng(3)
    vectors = unit(rng, 200)
    done = threading.Event()
    seen: list[int] = []

    def writer(offset: int) -> None:
        for i in range(50):
            n = offset + i
            col.upsert([n + 1], vectors[n : n + 1])  # type: ignore[attr-defined]

    def follower() -> None:
        applied = 0
        while True:
            finished = done.is_set()
            with col.engine.connect() as conn:  # type: ignore[attr-defined]
                changes = read_changes(conn, "media", applied)
            for change in changes:
                seen.extend(change.ids)
                applied = change.seq
            if finished and not changes:
                return

    reader = threading.Thread(target=follower)
    reader.start()
    threads = [threading.Thread(target=writer, args=(k * 50,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reader.join(timeout=60)
    assert sorted(seen) == list(range(1, 201))


def test_serve_on_ray_refuses_a_store_that_machines_cannot_share(tmp_path: object) -> None:
    from typer.testing import CliRunner

    from metamedia.cli.main import app

    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "serve", "--ray"], env={"METAMEDIA_DATABASE_URL": ""})
    assert result.exit_code != 0
    assert "PostgreSQL" in result.output
    bad = CliRunner().invoke(app, ["cluster", "scale", "--replicas", "0"])
    assert bad.exit_code == 2  # usage error before anything connects
