"""End-to-end engine benchmark on the bundled demo catalog (issue: the embedded discovery engine).

Records: ingest rate excluding and including embedding, query-embedding p50/p99, library search
p50/p99 excluding embedding, and HTTP /search p50/p99 against a real uvicorn server (including
embedding: every HTTP query is new to the server). Writes bench/results/engine-<stamp>.json and
a markdown table bench/results/engine-latest.md.

    .venv/bin/python bench/engine_bench.py [--catalog data/demo-catalog.jsonl.gz] [--queries 200]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe_machine, machine_line  # noqa: E402
from metamedia.engine import Engine  # noqa: E402
from metamedia.ingest.run import ingest_files  # noqa: E402
from metamedia.settings import Settings  # noqa: E402
from metamedia.store.factory import open_store  # noqa: E402
from paths import repo_relative  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = ["space", "heist", "love", "war", "ghost", "robot", "detective", "family", "zombie", "pirate",
            "time travel", "wedding", "boxing", "dragon", "spy", "prison", "music", "alien", "school", "road trip"]
SHAPES = ["{s} movies", "funny {s} films", "dark {s} thrillers from the 90s", "highly rated {s} drama",
          "{s} adventure under 2 hours", "feel-good {s} comedy", "recent {s} action", "classic {s} westerns",
          "{s} documentaries", "scary {s} horror"]


def queries(n: int, salt: str = "") -> list[str]:
    out = [shape.format(s=s) for s in SUBJECTS for shape in SHAPES]
    out = [f"{q} {salt}".strip() for q in out]
    return (out * (n // len(out) + 1))[:n]


def pct(values: list[float]) -> dict[str, float]:
    arr = np.array(values)
    return {"p50_ms": round(float(np.percentile(arr, 50)), 3), "p99_ms": round(float(np.percentile(arr, 99)), 3),
            "mean_ms": round(float(arr.mean()), 3), "n": len(values)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", default=str(ROOT / "data" / "demo-catalog.jsonl.gz"))
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--data-dir", default="", help="an engine folder already holding the catalog (skips re-embedding it)")
    ap.add_argument("--embed-sample", type=int, default=2000, help="items embedded to measure the embedding ingest rate")
    args = ap.parse_args()
    catalog = Path(args.catalog)
    machine = describe_machine()
    results: dict[str, object] = {"machine": machine, "catalog": repo_relative(catalog)}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/store_only.db")
        t = time.perf_counter()
        rep = ingest_files(store, [catalog], model_name="all-MiniLM-L6-v2")
        dt = time.perf_counter() - t
        store.close()
        results["ingest_store_only"] = {"items": rep.inserted, "seconds": round(dt, 2), "items_per_s": round(rep.inserted / dt, 1)}

        sample = Path(tmp) / "sample.jsonl"
        with gzip.open(catalog, "rt", encoding="utf-8") as fin, open(sample, "w", encoding="utf-8") as fout:
            for i, line in enumerate(fin):
                if i >= args.embed_sample:
                    break
                fout.write(line)
        probe = Engine(Settings(data_dir=Path(tmp) / "probe"))
        t = time.perf_counter()
        rep = probe.ingest([sample])
        dt = time.perf_counter() - t
        probe.close()
        results["ingest_with_embedding"] = {"items": rep.inserted, "seconds": round(dt, 2), "items_per_s": round(rep.inserted / dt, 1)}

        data_dir = Path(args.data_dir) if args.data_dir else Path(tmp) / "engine"
        engine = Engine(Settings(data_dir=data_dir))
        if engine.count() == 0:
            engine.ingest([catalog])
        results["catalog_items"] = engine.count()

        qs = queries(args.queries)
        emb = []
        for q in qs[:100]:
            t = time.perf_counter()
            engine.embedder.encode([q + " x"])  # bypass the LRU cache
            emb.append((time.perf_counter() - t) * 1000)
        results["query_embedding"] = pct(emb)
        for q in qs:
            engine.search(q, 10)  # warm the query-embedding cache
        lat = []
        for q in qs:  # the pipeline itself: the result cache would answer repeated queries in ~0.2 ms
            t = time.perf_counter()
            engine.search_pipeline.search(q, 10)
            lat.append((time.perf_counter() - t) * 1000)
        results["library_search_excluding_embedding"] = pct(lat)
        engine.close()

        port = free_port()
        env = dict(os.environ, METAMEDIA_DATA_DIR=str(data_dir), METAMEDIA_AUTH_DISABLED="1", METAMEDIA_RATE_LIMIT="1000000/second")
        proc = subprocess.Popen([sys.executable, "-m", "metamedia.cli", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=30) as client:
                for _ in range(600):
                    try:
                        if client.get("/ready").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.2)
                http_lat = []
                for q in queries(args.queries, salt="tonight"):
                    t = time.perf_counter()
                    r = client.get("/search", params={"q": q, "k": 10})
                    http_lat.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                results["http_search_including_embedding"] = pct(http_lat)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out_dir / f"engine-{stamp}.json").write_text(json.dumps(results, indent=2))
    rows = [
        ("ingest, store only (parse + merge + commit)", f"{results['ingest_store_only']['items_per_s']} items/s"),  # type: ignore[index]
        ("ingest incl. embedding + index", f"{results['ingest_with_embedding']['items_per_s']} items/s"),  # type: ignore[index]
    ]
    for key in ("query_embedding", "library_search_excluding_embedding", "http_search_including_embedding"):
        r = results[key]
        rows.append((key.replace("_", " "), f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms (n={r['n']})"))  # type: ignore[index]
    md = [f"# Engine benchmark ({stamp})", "", f"Machine: {machine_line(machine)}", "", "| measure | result |", "|---|---|"]
    md += [f"| {a} | {b} |" for a, b in rows]
    (out_dir / "engine-latest.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
