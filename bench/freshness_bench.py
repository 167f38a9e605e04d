"""What freshness across processes costs: the per-request beacon check and a catch-up.

Two VectorDB objects over one folder stand in for two processes (each has its own in-memory
state; the beacon file and the SQLite store are shared). Measured in one run:

- the beacon check (`ChangeBeacon.value()`, done by every read) beside a plain attribute read and
  `os.stat` of the beacon file (what a check by system call would cost);
- `Collection.catch_up()` in the reader after the writer committed 1 and 100 changed points
  (N × 384 float32 cosine, media-like payloads), beside the writer's own upsert of the same batch;
- the unfiltered search p50 with the check (always) — the check is inside it.

    python bench/freshness_bench.py [--n 20000] [--rounds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np
import sqlalchemy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from machine import describe_machine  # noqa: E402
from metamedia.coord.beacon import ChangeBeacon, beacon_path  # noqa: E402
from metamedia.vectors import CollectionConfig, VectorDB  # noqa: E402

DIM = 384


def per_call_ns(fn: object, number: int = 200_000) -> float:
    timer = timeit.Timer(fn)  # type: ignore[arg-type]
    return min(timer.repeat(5, number)) / number * 1e9


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        beacon = ChangeBeacon(beacon_path(folder))

        class Holder:
            value = 1

        holder = Holder()
        check = {
            "beacon_value_ns": per_call_ns(beacon.value),
            "attribute_read_ns": per_call_ns(lambda: holder.value),
            "os_stat_ns": per_call_ns(lambda: os.stat(beacon.path), 20_000),
            "beacon_bump_us": per_call_ns(beacon.bump, 2_000) / 1000,
        }
        url = f"sqlite:///{folder / 'store.db'}"
        writer_db = VectorDB(sqlalchemy.create_engine(url), folder)
        col = writer_db.create_collection(CollectionConfig(name="media", dim=DIM, ef_construction=100))
        payloads = [{"year": 1950 + i % 70, "genres": ["Drama"], "rating": i % 10} for i in range(args.n)]
        for start in range(0, args.n, 5000):
            end = min(start + 5000, args.n)
            col.upsert(np.arange(start, end), unit(rng, end - start), payloads[start:end])
        col.snapshot()
        reader_db = VectorDB(sqlalchemy.create_engine(url), folder)
        reader = reader_db.get_collection("media")
        query = unit(rng, 1)[0]
        reader.search(query, k=10)
        catch_up: dict[str, dict[str, float]] = {}
        for batch in (1, 100):
            write_ms, catch_ms = [], []
            for r in range(args.rounds):
                ids = rng.choice(args.n, batch, replace=False)
                start = time.perf_counter()
                col.upsert(ids, unit(rng, batch), [{"year": 2000 + r, "genres": ["Comedy"]}] * batch)
                write_ms.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                reader.catch_up()
                catch_ms.append((time.perf_counter() - start) * 1000)
            catch_up[f"{batch}_changed"] = {
                "writer_upsert_ms_p50": statistics.median(write_ms),
                "reader_catch_up_ms_p50": statistics.median(catch_ms),
                "reader_catch_up_ms_max": max(catch_ms),
            }
        idle_ms = [0.0] * args.rounds
        for r in range(args.rounds):
            start = time.perf_counter()
            reader.catch_up()  # nothing new: one SQL read of the rows after our version
            idle_ms[r] = (time.perf_counter() - start) * 1000
        catch_up["nothing_changed"] = {"reader_catch_up_ms_p50": statistics.median(idle_ms)}
        search_us = per_call_ns(lambda: reader.search(query, k=10), 2_000) / 1000
        ok = reader.ids().tolist() == col.ids().tolist()
        result = {
            "bench": "freshness",
            "machine": describe_machine(),
            "n": args.n,
            "dim": DIM,
            "check": check,
            "catch_up": catch_up,
            "search_k10_us_min_mean": search_us,
            "reader_matches_writer": ok,
        }
        writer_db.close(snapshot=False)
        reader_db.close(snapshot=False)
    out = ROOT / "bench" / "results" / f"freshness-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
