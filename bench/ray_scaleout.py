"""Scale-out on Ray: 1 vs 2 vs 3 replicas per index shard, queries/s and p50/p99 latency.

A local Ray cluster (`ray.cluster_utils.Cluster`: a head node for the ingress, the query embedder
and Serve's HTTP proxy, plus three worker nodes for shard replicas, one CPU each), a real
PostgreSQL (pgserver) holding the first `--items` films of the bundled demo catalog with their
shipped text embeddings, S=2 index shards. For R = 1, 2, 3 (scaled in place, as `metamedia cluster
scale` does) two loads run for `--duration` seconds each with `--clients` concurrent clients:

- `shards`: the merged top 10 over the shards for a precomputed query vector (the scatter/gather
  path the ingress uses, driven from this process through Serve handles);
- `http`: `GET /search` on Serve's HTTP proxy (parse, query embedding in the QueryEmbedder
  deployment, shard search, lexical search and ranking on PostgreSQL) with 50 different queries.

Peer in the same run: the single-process embedded collection (faiss HNSW, same vectors, same
config, same number of client threads), as a ratio.

HONEST NOTE: every "node" here is a process group on ONE machine with 2 CPU cores shared with
other work: more replicas cannot add CPU, so this measures the overhead and the behaviour of
scale-out (no errors, latency under contention), not the gain that separate machines give.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import describe_machine  # noqa: E402

REPO = HERE.parent
DEMO = REPO / "data" / "demo-catalog.jsonl.gz"
QUERIES: list[str] = json.loads((REPO / "tests" / "data" / "topic_queries.json").read_text())["queries"]


def load(clients: int, duration: float, call: Callable[[int], None]) -> dict[str, Any]:
    """`clients` threads calling `call(i)` for `duration` seconds: qps, p50/p99 ms, errors."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop = time.monotonic() + duration

    def worker(seed: int) -> None:
        i = seed
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                call(i)
            except Exception as exc:  # every failure is counted and reported
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                continue
            finally:
                i += clients
            with lock:
                latencies.append(time.perf_counter() - t0)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(ms),
        "errors": len(errors),
        "first_errors": errors[:3],
        "qps": round(len(ms) / elapsed, 1),
        "p50_ms": round(statistics.median(ms), 2) if ms else None,
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2) if ms else None,
    }


def films(dest: Path, rows: int) -> Path:
    with gzip.open(DEMO, "rt", encoding="utf-8") as fin, open(dest, "w", encoding="utf-8") as fout:
        for i, line in enumerate(fin):
            if i >= rows:
                break
            fout.write(line)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=4803)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import httpx
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster

    from metamedia.demo import prime_shipped_embeddings
    from metamedia.distributed.control import Placement, RayServing
    from metamedia.distributed.ingress import _shard_handle
    from metamedia.distributed.media import ShardedMedia, ShardRouter
    from metamedia.embed.bundle import bundle_path_for
    from metamedia.embed.hybrid import HybridWeights, combine, genre_block, meta_block, mood_block
    from metamedia.engine import Engine
    from metamedia.settings import Settings
    from metamedia.store.pgserver_dev import start_pg_server, stop_pg_server
    from metamedia.store.postgres import make_pg_engine
    from metamedia.store.sql import make_engine
    from metamedia.vectors import VectorDB
    from metamedia.vectors_pg import PgVectorDB

    result: dict[str, Any] = {"machine": describe_machine(), "items": args.items, "shards": 2,
                              "clients": args.clients, "duration_s": args.duration, "runs": []}  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="metamedia-ray-bench-"))
    pg = start_pg_server()
    cluster = None
    try:
        url = pg.create_database("ray_bench")
        t0 = time.monotonic()
        with Engine(Settings(data_dir=work / "load", database_url=url, vector_backend="pgvector")) as eng:
            prime_shipped_embeddings(eng, bundle_path_for(DEMO))
            eng.ingest([films(work / "films.jsonl", args.items)])
        result["load_s"] = round(time.monotonic() - t0, 1)

        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"mm_head": 100},
                                                               "include_dashboard": False})  # fmt: skip
        for _ in range(3):
            cluster.add_node(num_cpus=1, resources={"mm_shards": 1})
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        port = 18000 + os.getpid() % 1000
        serve.start(http_options={"host": "127.0.0.1", "port": port, "location": "HeadOnly"})
        settings = Settings(data_dir=work / "ingress", database_url=url, vector_backend="pgvector",
                            auth_disabled=True, host="127.0.0.1", rate_limit="100000/second")  # fmt: skip
        placement = Placement(
            shard_actor_options={"num_cpus": 0, "resources": {"mm_shards": 0.01}},
            max_shard_replicas_per_node=1,
            ingress_actor_options={"num_cpus": 0, "resources": {"mm_head": 0.01}},
            embedder_actor_options={"num_cpus": 0, "resources": {"mm_head": 0.01}},
        )
        serving = RayServing(settings, placement, timeout_s=900)
        replicas = [int(r) for r in args.replicas.split(",")]
        t0 = time.monotonic()
        serving.deploy(shards=2, replicas=replicas[0])
        result["first_deploy_s"] = round(time.monotonic() - t0, 1)

        source = PgVectorDB(make_pg_engine(url)).get_collection("media")
        sharded = ShardedMedia(source, ShardRouter(serving.current_layout, _shard_handle))
        embedder = serve.get_deployment_handle("QueryEmbedder", app_name="metamedia")
        meta = meta_block(year=None, runtime=None, rating=None, votes=None, popularity=None,
                          media_type=None, has_overview=True)  # fmt: skip
        qvecs = [combine(embedder.encode_query.remote(q).result(timeout_s=300), genre_block([]),
                         mood_block([]), meta, HybridWeights()) for q in QUERIES]  # fmt: skip

        # the peer: one process, the embedded collection over the same points
        ids = source.ids()
        local = VectorDB(make_engine(f"sqlite:///{work / 'single.db'}"), work / "single")
        single = local.create_collection(source.config)
        single.upsert(ids, source.get_vectors(ids), [source.get(int(i))[1] for i in ids])
        result["single_process"] = load(args.clients, args.duration, lambda i: single.search(qvecs[i % 50], 10))

        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        while http.get("/ready").status_code != 200:
            time.sleep(0.5)

        def http_search(i: int) -> None:
            r = http.get("/search", params={"q": QUERIES[i % 50], "k": 10})
            if r.status_code != 200 or len(r.json()["results"]) != 10:
                raise RuntimeError(f"{r.status_code} {r.text[:100]}")

        for r in replicas:
            t0 = time.monotonic()
            if r != serving.current_layout().replicas:
                serving.scale(r)
            run = {"replicas": r, "scale_s": round(time.monotonic() - t0, 1)}
            run["shards"] = load(args.clients, args.duration, lambda i: sharded.search(qvecs[i % 50], 10))
            run["http"] = load(args.clients, args.duration, http_search)
            result["runs"].append(run)
            print(json.dumps(run), flush=True)
        http.close()
        local.close(snapshot=False)
    finally:
        if cluster is not None:
            serve.shutdown()
            ray.shutdown()
            cluster.shutdown()
        stop_pg_server(pg)
    out = Path(args.out) if args.out else HERE / "results" / f"ray-scaleout-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    single_qps = result["single_process"]["qps"]
    print(f"\nsingle process (embedded faiss, {args.clients} threads): {single_qps} q/s, "
          f"p50 {result['single_process']['p50_ms']} ms")  # fmt: skip
    print("| R | shard search q/s | p50 ms | p99 ms | vs single process | HTTP /search q/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in result["runs"]:
        s, h = run["shards"], run["http"]
        print(f"| {run['replicas']} | {s['qps']} | {s['p50_ms']} | {s['p99_ms']} | {s['qps'] / single_qps:.2f}x "
              f"| {h['qps']} | {h['p50_ms']} | {h['p99_ms']} | {s['errors'] + h['errors']} |")  # fmt: skip
    print(f"results: {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
