"""Serving on a real local multi-node Ray cluster (issue 21, Done-when 1-5).

Real parts only: a Ray cluster of three nodes (tests/rayfixtures.py), a real PostgreSQL with
pgvector (pgserver), the real model (ONNX, in the QueryEmbedder deployment) and the first 4,803
items of the bundled demo catalog (the TMDB 5000 films) with their shipped text embeddings. The
tests run in order on one deployment: each step starts from the state the previous one left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from metamedia.embed.hybrid import combine, genre_block, meta_block, mood_block
from metamedia.settings import Settings
from tests import rayfixtures
from tests.conftest import DEMO_CATALOG, TMDB_5000_FILMS, demo_catalog_slice
from tests.pgfixtures import PgServer
from tests.rayfixtures import HEAD_RESOURCE, SHARD_RESOURCE, RayTestCluster

pytestmark = pytest.mark.slow
ray_cluster = rayfixtures.ray_cluster  # the module-scoped cluster fixture

QUERIES: list[str] = json.loads((Path(__file__).parent / "data" / "topic_queries.json").read_text())["queries"]
FILTERS: list[dict[str, Any]] = [
    {"must": [{"field": "year", "range": {"gte": 1990, "lte": 1999}}]},
    {"must": [{"field": "genres", "in": ["Horror"]}]},
    {"must": [{"field": "year", "range": {"gte": 2010}}, {"field": "genres", "in": ["Animation"]}]},
    {"must_not": [{"field": "genres", "in": ["Drama", "Comedy"]}]},
]


@pytest.fixture(scope="module")
def catalog_db(pg_server: PgServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database holding the demo films, indexed on pgvector (the store of record)."""
    from metamedia.demo import prime_shipped_embeddings
    from metamedia.embed.bundle import bundle_path_for
    from metamedia.engine import Engine

    url = pg_server.create_database("mm_ray_serving")
    films = demo_catalog_slice(tmp_path_factory.mktemp("ray_src") / "films.jsonl", TMDB_5000_FILMS)
    # pgvector's own HNSW graph is built with a smaller ef_construction: the shards build their own
    # graphs, and this load is most of the module's setup time
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("ray_load"),
        database_url=url,
        vector_backend="pgvector",
        hnsw_ef_construction=64,
    )
    with Engine(settings) as engine:
        prime_shipped_embeddings(engine, bundle_path_for(DEMO_CATALOG))
        engine.ingest([films])
    yield url
    pg_server.drop_database("mm_ray_serving")


@pytest.fixture(scope="module")
def serving(ray_cluster: RayTestCluster, catalog_db: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """metamedia on the cluster: S=2 shards x R=2 replicas (one of each shard per worker node)."""
    from metamedia.distributed.control import Placement, RayServing

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("ray_ingress"),
        database_url=catalog_db,
        vector_backend="pgvector",
        auth_disabled=True,
        host="127.0.0.1",
    )
    placement = Placement(
        shard_actor_options={"num_cpus": 0, "resources": {SHARD_RESOURCE: 0.01}},
        max_shard_replicas_per_node=1,
        ingress_actor_options={"num_cpus": 0, "resources": {HEAD_RESOURCE: 0.01}},
        embedder_actor_options={"num_cpus": 0, "resources": {HEAD_RESOURCE: 0.01}},
    )
    ray_serving = RayServing(settings, placement, ef_construction=100, shard_wait_s=3, timeout_s=900)
    ray_serving.deploy(shards=2, replicas=2)
    return ray_serving


@pytest.fixture(scope="module")
def http(ray_cluster: RayTestCluster, serving: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ray_cluster.http_url, timeout=120) as client:
        deadline = time.monotonic() + 300
        while client.get("/ready").status_code != 200:
            if time.monotonic() > deadline:
                pytest.fail("the Ray ingress never became ready")
            time.sleep(0.5)
        yield client


@pytest.fixture(scope="module")
def media(serving: Any, catalog_db: str) -> Iterator[Any]:
    """The sharded media collection as the ingress builds it (router over the Serve handles), the
    pgvector source, all points (ids, unit vectors, payloads) and the query vectors."""
    from metamedia.distributed.ingress import _shard_handle
    from metamedia.distributed.media import ShardedMedia, ShardRouter
    from metamedia.store.postgres import make_pg_engine
    from metamedia.vectors_pg import PgVectorDB

    db = PgVectorDB(make_pg_engine(catalog_db))
    source = db.get_collection("media")
    sharded = ShardedMedia(source, ShardRouter(serving.current_layout, _shard_handle))
    yield sharded
    db.close()


@pytest.fixture(scope="module")
def query_vectors(serving: Any) -> np.ndarray:
    """The 50 queries as the search pipeline builds them: the model's text vector (from the
    QueryEmbedder deployment) in the hybrid layout with empty genre and mood blocks."""
    from ray import serve

    from metamedia.embed.hybrid import HybridWeights

    handle = serve.get_deployment_handle("QueryEmbedder", app_name="metamedia")
    weights = HybridWeights()
    meta = meta_block(
        year=None, runtime=None, rating=None, votes=None, popularity=None, media_type=None, has_overview=True
    )
    out = []
    for text in QUERIES:
        vec = handle.encode_query.remote(text).result(timeout_s=120)
        out.append(combine(vec, genre_block([]), mood_block([]), meta, weights))
    return np.stack(out).astype(np.float32)


def passes(payload: dict[str, Any], flt: dict[str, Any]) -> bool:
    """The four test filters, evaluated in plain Python on a point's payload."""
    for cond in flt.get("must", []):
        value = payload.get(cond["field"])
        if "range" in cond:
            rng = cond["range"]
            if value is None or value < rng.get("gte", value) or value > rng.get("lte", value):
                return False
        elif not set(cond["in"]) & set(value or []):
            return False
    return all(not set(c["in"]) & set(payload.get(c["field"]) or []) for c in flt.get("must_not", []))


def test_sharded_top10_matches_exact_search_and_filters_as_single_process(
    media: Any, query_vectors: np.ndarray, tmp_path: Path
) -> None:
    from metamedia.store.sql import make_engine
    from metamedia.vectors import VectorDB

    source = media.source
    ids = source.ids()
    vectors = source.get_vectors(ids)
    payloads = source.payload_field("genres")
    years = source.payload_field("year")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = query_vectors / np.linalg.norm(query_vectors, axis=1, keepdims=True)

    # 1. recall@10 of the merged shard answers against exact search on the same vectors
    found = 0
    for q in query_vectors:
        exact = set(ids[np.argsort(-(unit @ (q / np.linalg.norm(q))))[:10]].tolist())
        got = [h.id for h in media.search(q, 10)]
        assert len(got) == 10 and len(set(got)) == 10
        found += len(exact & set(got))
    recall = found / (10 * len(query_vectors))
    assert recall >= 0.99, recall
    print(f"recall@10 of the merged shard answers vs exact: {recall:.4f}")

    # 2. filters: the same answers as the single-process embedded collection over the same points
    local_db = VectorDB(make_engine(f"sqlite:///{tmp_path / 'single.db'}"), tmp_path)
    single = local_db.create_collection(source.config)
    full = {int(i): source.get(int(i))[1] for i in ids}
    single.upsert(ids, vectors, [full[int(i)] for i in ids])
    agree = total = 0
    for flt in FILTERS:
        for q in queries[:10]:
            want = [h.id for h in single.search(q, 10, filter=flt)]
            got = [h.id for h in media.search(q, 10, filter=flt)]
            assert got, flt
            assert all(passes({"genres": payloads[i], "year": years[i]}, flt) for i in got), flt
            assert len(got) == len(want)
            agree += len(set(got) & set(want))
            total += len(want)
    local_db.close(snapshot=False)
    assert agree / total >= 0.99, agree / total
    print(f"filtered top-10 agreement with the single-process collection: {agree / total:.4f}")
    del unit, queries


def test_shard_replicas_never_load_torch(serving: Any) -> None:
    assert all(status["torch_loaded"] is False for status in serving.shard_status())


def test_http_search_through_the_ingress_applies_filters(http: httpx.Client) -> None:
    r = http.get("/search", params={"q": "haunted house", "k": 10, "genre": "Horror", "year_min": 1990})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == 10
    assert all("Horror" in row["genres"] and row["year"] >= 1990 for row in results)
    bad = http.get("/search", params={"q": "x", "k": 0})
    assert bad.status_code == 422 and "error" in bad.json()


def shard_replica_nodes() -> dict[str, list[str]]:
    """Serve application of each live shard replica -> the node ids its replicas run on (from the
    GCS actor table: the state API needs the dashboard, which the test cluster does not run)."""
    from ray._private import state

    out: dict[str, list[str]] = {}
    for info in state.actors(actor_state_name="ALIVE").values():
        name = str(info.get("ActorClassName") or "")
        if name.startswith("ServeReplica:metamedia-shard-"):
            out.setdefault(name.split(":")[1], []).append(str(info["Address"]["NodeID"]))
    return out


def search_many(
    http: httpx.Client, n: int, headers: dict[str, str] | None = None, offset: int = 0
) -> list[str]:
    """n searches through the ingress; the list of what went wrong (empty = all answered fully)."""
    problems = []
    for i in range(offset, offset + n):
        r = http.get("/search", params={"q": QUERIES[i % len(QUERIES)], "k": 10}, headers=headers)
        if r.status_code != 200:
            problems.append(f"{r.status_code}: {r.text[:200]}")
        elif len(r.json()["results"]) != 10:
            problems.append(f"{len(r.json()['results'])} results for {QUERIES[i % len(QUERIES)]!r}")
    return problems


def test_losing_the_node_with_one_replica_of_each_shard_loses_no_query(
    ray_cluster: RayTestCluster, serving: Any, http: httpx.Client, media: Any, query_vectors: np.ndarray
) -> None:
    layout = serving.current_layout()
    placed = shard_replica_nodes()
    node_a = ray_cluster.node_id("a")
    assert all(node_a in placed[app] for app in layout.app_names), placed  # one replica of each shard
    ray_cluster.remove("a")
    assert search_many(http, 40) == []
    assert all(len(media.search(q, 10)) == 10 for q in query_vectors[:10])


def test_writes_while_a_node_is_down_reach_its_replacement_replicas(
    ray_cluster: RayTestCluster, serving: Any, http: httpx.Client, media: Any
) -> None:
    created = []
    for n in range(3):
        body = {"title": f"Quillon Marsh {n}", "overview": f"A lighthouse keeper counts ships, part {n}.",
                "genres": ["Drama"], "year": 2001 + n, "media_type": "movie"}  # fmt: skip
        r = http.post("/admin/items", json=body)
        assert r.status_code == 201, r.text
        seq = int(r.headers["x-metamedia-seq"])
        created.append((r.json()["id"], seq))
        # read-your-writes: the write's change number as the floor of the next search
        found = http.get("/search", params={"q": f"Quillon Marsh {n}", "k": 5},
                         headers={"X-Metamedia-Min-Seq": str(seq)})  # fmt: skip
        assert found.status_code == 200, found.text
        assert created[-1][0] in [row["id"] for row in found.json()["results"]]
    last_seq = max(seq for _, seq in created)
    layout = serving.current_layout()

    ray_cluster.add_shard_node("a2")
    serving.wait_running(layout.app_names, {app: layout.replicas for app in layout.app_names})
    placed = shard_replica_nodes()
    assert all(ray_cluster.node_id("a2") in placed[app] for app in layout.app_names), placed
    # Only the new replicas are left once node b is gone: they must hold the writes themselves.
    ray_cluster.remove("b")
    for item_id, _seq in created:
        vector = media.source.get(item_id)[0]
        assert media.search(vector, 1)[0].id == item_id
    assert all(s["applied_seq"] >= last_seq for s in serving.shard_status())
    assert search_many(http, 20) == []
    bad = http.get("/search", params={"q": "x"}, headers={"X-Metamedia-Min-Seq": "soon"})
    assert bad.status_code == 422 and "error" in bad.json()
    # a change number no shard has applied: a clear 503 after the shard wait, not a stale answer
    future = http.get("/search", params={"q": "lighthouse"}, headers={"X-Metamedia-Min-Seq": str(last_seq + 10**6)})
    assert future.status_code == 503 and "applied" in future.json()["error"], future.text
    ray_cluster.add_shard_node("b2")
    serving.wait_running(layout.app_names, {app: layout.replicas for app in layout.app_names})


class QueryLoop:
    """Searches through the ingress in a thread until stopped; counts answers and problems."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.done = 0
        self.problems: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=120) as client:
            while not self._stop.is_set():
                self.problems += search_many(client, 1, offset=self.done)
                self.done += 1

    def __enter__(self) -> QueryLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=300)


def test_raising_replicas_from_2_to_3_under_queries_has_no_errors(
    ray_cluster: RayTestCluster, serving: Any
) -> None:
    ray_cluster.add_shard_node("c")
    with QueryLoop(ray_cluster.http_url) as loop:
        layout = serving.scale(3)
        before = loop.done
        deadline = time.monotonic() + 120
        while loop.done < before + 10 and time.monotonic() < deadline:
            time.sleep(0.2)  # let the loop run on the scaled deployment
    assert layout.replicas == 3
    assert loop.problems == [] and loop.done >= 10
    print(f"scale 2 -> 3: {loop.done} searches during and after, 0 errors")
    placed = shard_replica_nodes()
    assert all(len(set(placed[app])) == 3 for app in layout.app_names), placed


def test_resharding_2_to_3_under_queries_keeps_every_item_exactly_once(
    ray_cluster: RayTestCluster, serving: Any, media: Any
) -> None:
    from ray import serve

    old = serving.current_layout()
    with QueryLoop(ray_cluster.http_url) as loop:
        new = serving.reshard(3, replicas=2)
        before = loop.done
        deadline = time.monotonic() + 120
        while loop.done < before + 10 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert (new.shards, new.version) == (3, old.version + 1)
    assert loop.problems == [] and loop.done >= 10
    print(f"reshard 2 -> 3: {loop.done} searches during and after, 0 errors")
    live = set(serve.status().applications)
    assert not live & set(old.app_names) and set(new.app_names) <= live
    held: list[int] = []
    for app in new.app_names:
        answers = {tuple(serving.call_shard(app, "ids")) for _ in range(6)}
        assert len(answers) == 1, f"replicas of {app} disagree"  # every replica holds the same items
        held += list(answers.pop())
    stored = sorted(int(i) for i in media.source.ids())
    assert sorted(held) == stored  # each item in exactly one shard, none lost


def test_metamedia_serve_ray_joins_the_cluster_and_serves(
    ray_cluster: RayTestCluster, serving: Any, catalog_db: str, tmp_path: Path
) -> None:
    """The command a user runs: `metamedia serve --ray --address ...` deploys its own layout on
    the running cluster (the old one is deleted), answers on the HTTP port, stops on Ctrl-C."""
    env = {
        **os.environ,
        "METAMEDIA_DATABASE_URL": catalog_db,
        "METAMEDIA_VECTOR_BACKEND": "pgvector",
        "METAMEDIA_AUTH_DISABLED": "1",
        "METAMEDIA_HOST": "127.0.0.1",
        "METAMEDIA_PORT": str(ray_cluster.http_port),
        "METAMEDIA_DATA_DIR": str(tmp_path),
    }
    before = serving.current_layout()
    command = [str(Path(sys.executable).parent / "metamedia"), "serve", "--ray",
               "--address", ray_cluster.cluster.address, "--shards", "1", "--replicas", "1"]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 600
        while not any("metamedia on Ray Serve at" in line for line in lines):
            assert proc.poll() is None, "".join(lines[-30:])
            assert time.monotonic() < deadline, "".join(lines[-30:])
            time.sleep(0.5)
        layout = serving.current_layout()
        assert (layout.version, layout.shards, layout.replicas) == (before.version + 1, 1, 1)
        with httpx.Client(base_url=ray_cluster.http_url, timeout=120) as client:
            assert search_many(client, 10) == []
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    assert proc.returncode == 0, "".join(lines[-30:])
