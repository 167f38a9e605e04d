"""Catalog embedding: local ingest vs `ingest --ray` on 1 and 2 worker nodes, and what a Ray node costs.

One process runs everything in order: the local ingest (SQLite + faiss, torch on every core), then a
local Ray cluster (`ray.cluster_utils.Cluster`: a head with no CPUs for the driver, worker nodes of
one CPU each) with one and then two worker nodes, each run into a fresh SQLite store, and two worker
nodes into a fresh PostgreSQL (pgserver) database, the store of record of a multi-machine deployment. Every run ingests
the same real slice of TMDB 5000 (full texts). Ray runs include starting their embedding actors
(model load) — the fixed cost a run pays once, measured separately as "actor start".

Per-node cost: the wall time of `add_node` (raylet up and registered) and the resident memory (RSS)
of a node's processes and their children, idle; the embedding actor's load time and RSS with the
model loaded.

HONEST NOTE: every node here is a process group on the same 2-core machine (shared with other work),
so two worker nodes cannot embed faster than one machine's 2 cores; the ratio shows Ray's overhead,
not the scale-out a second machine gives. On separate machines throughput adds per node.

    python bench/ray_ingest_bench.py [--items 120] [--out bench/results/ray-ingest-<time>.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from machine import describe_machine, machine_line  # noqa: E402

TMDB = ROOT / "tests" / "data" / "tmdb-5000" / "tmdb_5000_movies.csv"


def tree_rss_mb(pids: list[int]) -> float:
    """RSS of these processes and all their children, MiB (shared pages counted per process)."""
    import psutil

    seen: set[int] = set()
    total = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                if p.pid not in seen:
                    seen.add(p.pid)
                    total += p.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return round(total / 2**20, 1)


def node_pids(node: Any) -> list[int]:
    return [info.process.pid for infos in node.all_processes.values() for info in infos if info.process]


def local_run(slice_path: Path, work: Path) -> dict[str, Any]:
    from metamedia.engine import Engine
    from metamedia.settings import Settings

    with Engine(Settings(data_dir=work / "local")) as eng:
        eng.embedder._load()  # model load is not part of the ingest rate (a server has it loaded)
        started = time.perf_counter()
        report = eng.ingest([slice_path])
        seconds = time.perf_counter() - started
    return {
        "items": report.inserted,
        "seconds": round(seconds, 2),
        "items_per_s": round(report.inserted / seconds, 1),
    }


def ray_run(slice_path: Path, work: Path, name: str, workers: int, database_url: str = "") -> dict[str, Any]:
    from metamedia.engine import Engine
    from metamedia.ingest.ray_ingest import RayIngestOptions
    from metamedia.settings import Settings

    with Engine(Settings(data_dir=work / name, database_url=database_url)) as eng:
        started = time.perf_counter()
        report, ray_report = eng.ingest_ray([slice_path], RayIngestOptions(workers=workers, batch_size=32))
        seconds = time.perf_counter() - started
    return {
        "items": report.inserted,
        "workers": ray_report.workers,
        "embedded": ray_report.embedded,
        "ray_embed_seconds": ray_report.seconds,  # from listing the pending items to the last result
        "seconds": round(seconds, 2),
        "items_per_s": round(report.inserted / seconds, 1),
    }


def actor_cost() -> dict[str, Any]:
    """Load the model in a Ray actor on a worker node: start-to-ready time and RSS."""
    import ray

    @ray.remote(num_cpus=1)
    class Probe:
        def load(self) -> dict[str, float]:
            import psutil

            from metamedia.embed.model import TextEmbedder

            started = time.perf_counter()
            embedder = TextEmbedder(threads=1, backend="torch")
            embedder._load()
            embedder.encode(["warm up"] * 8)
            return {
                "model_load_s": round(time.perf_counter() - started, 2),
                "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
            }

    started = time.perf_counter()
    probe = Probe.remote()  # type: ignore[attr-defined]
    out = ray.get(probe.load.remote(), timeout=600)
    out["actor_start_to_ready_s"] = round(time.perf_counter() - started, 2)
    ray.kill(probe)
    return dict(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=120)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import ray
    from ray.cluster_utils import Cluster
    from tests.conftest import write_csv_slice

    machine = describe_machine()
    print(machine_line(machine), flush=True)
    out: dict[str, Any] = {"benchmark": "ray_ingest", "machine": machine, "items": args.items}
    with tempfile.TemporaryDirectory(prefix="metamedia-ray-bench-") as tmp:
        work = Path(tmp)
        slice_path = write_csv_slice(TMDB, work / "tmdb.csv", args.items)
        out["local"] = local_run(slice_path, work)
        print("local", out["local"], flush=True)

        started = time.perf_counter()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        head_s = time.perf_counter() - started
        try:
            started = time.perf_counter()
            first = cluster.add_node(num_cpus=1)
            worker_s = time.perf_counter() - started
            cluster.wait_for_nodes(timeout=300)
            ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
            out["node_cost"] = {
                "head_start_s": round(head_s, 2),
                "worker_start_s": round(worker_s, 2),
                "head_rss_mb_idle": tree_rss_mb(node_pids(cluster.head_node)),
                "worker_rss_mb_idle": tree_rss_mb(node_pids(first)),
            }
            out["embed_actor"] = actor_cost()
            print("node cost", out["node_cost"], out["embed_actor"], flush=True)
            out["ray_1_node"] = ray_run(slice_path, work, "ray1", workers=1)
            print("ray 1 node", out["ray_1_node"], flush=True)
            cluster.add_node(num_cpus=1)
            cluster.wait_for_nodes(timeout=300)
            out["ray_2_nodes"] = ray_run(slice_path, work, "ray2", workers=2)
            print("ray 2 nodes", out["ray_2_nodes"], flush=True)
            from metamedia.store.pgserver_dev import start_pg_server, stop_pg_server

            pg = start_pg_server()  # the store of record of a multi-machine deployment
            try:
                url = pg.create_database("ray_bench")
                out["ray_2_nodes_postgres"] = ray_run(slice_path, work, "ray2pg", workers=2, database_url=url)
                print("ray 2 nodes, PostgreSQL", out["ray_2_nodes_postgres"], flush=True)
            finally:
                stop_pg_server(pg)
        finally:
            ray.shutdown()
            cluster.shutdown()
    local_rate = out["local"]["items_per_s"]
    out["ratios_vs_local"] = {
        "ray_1_node": round(out["ray_1_node"]["items_per_s"] / local_rate, 2),
        "ray_2_nodes": round(out["ray_2_nodes"]["items_per_s"] / local_rate, 2),
        "ray_2_nodes_postgres": round(out["ray_2_nodes_postgres"]["items_per_s"] / local_rate, 2),
    }
    out["note"] = (
        "all nodes share one 2-core machine with other work: Ray rates include actor start and show "
        "overhead, not multi-machine scale-out"
    )
    path = args.out or ROOT / "bench" / "results" / f"ray-ingest-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["ratios_vs_local"]), "->", path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
