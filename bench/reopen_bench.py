"""Reopen time and disk per vector: metamedia's snapshot vs raw faiss, in one run.

Builds one collection (N × 384, media-like payloads: year, genres list, rating, type, a unique
hash), snapshots it, and saves the same HNSW graph with raw faiss. Then, in fresh processes and
interleaved rounds: raw faiss `read_index`; metamedia reopen with the binary payload columns;
metamedia reopen of the same snapshot without them (payloads.jsonl re-parsed, as before issue 20);
and `store-vectors`, reading every vector from the SQLite store of record (what a snapshot without
its own copy of the vectors would add to a reopen, at least).
Disk: bytes on disk per vector over one float32 copy (N × dim × 4).

    python bench/reopen_bench.py [--n 50000] [--rounds 3]

Also recorded: the disk breakdown per vector (store blobs, payload JSON, snapshot vectors, graph
links, payload files) and the time to rebuild the collection from the store of record alone
(what a lost or damaged snapshot costs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from machine import describe_machine  # noqa: E402

DIM = 384
GENRES = ["Drama", "Comedy", "Action", "Horror", "Romance", "Thriller", "Animation", "Documentary"]


def child(kind: str, folder: Path) -> float:
    """Seconds to open, in this fresh process (imports excluded); `rebuild` opens without a snapshot."""
    import faiss
    import sqlalchemy

    from metamedia.vectors import VectorDB

    faiss.omp_set_num_threads(1)
    start = time.perf_counter()
    if kind == "store-vectors":
        # The least a snapshot without its own vectors would add to a reopen: read every live vector
        # from the store of record into one array (sqlite3 directly, no ORM, no graph).
        import sqlite3

        with sqlite3.connect(folder / "store.db") as conn:
            rows = conn.execute(
                "SELECT vector FROM vector_points WHERE collection = 'bench' AND NOT deleted ORDER BY point_id"
            ).fetchall()
        matrix = np.frombuffer(b"".join(r[0] for r in rows), dtype="<f4").reshape(-1, DIM)
        assert len(matrix) > 0
        return time.perf_counter() - start
    if kind == "faiss":
        index = faiss.read_index(str(folder / "raw.faiss"))
        assert index.ntotal > 0
    else:
        db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{folder / 'store.db'}"), folder)
        col = db.get_collection("bench")
        assert col.count() > 0
        if kind == "rebuild":  # the state was rebuilt from the store of record (no snapshot to load)
            assert col._snapshot_version == -1
    return time.perf_counter() - start


def disk_breakdown(folder: Path, n: int) -> dict[str, float]:
    """Bytes per vector of each part on disk: the SQLite store of record and the snapshot files."""
    import sqlite3

    with sqlite3.connect(folder / "store.db") as conn:
        vectors, payloads = conn.execute(
            "SELECT sum(length(vector)), sum(length(payload)) FROM vector_points WHERE collection = 'bench'"
        ).fetchone()
    store_db = sum(p.stat().st_size for p in folder.glob("store.db*"))
    directory = folder / "vectors" / "bench"
    snapshot = directory / "snapshots" / (directory / "CURRENT").read_text().strip()
    files = {p.name: p.stat().st_size for p in snapshot.iterdir() if p.is_file()}
    index_file = files.pop("index.faiss")
    vector_bytes = n * DIM * 4
    parts = {
        "store_vector_blobs": vectors,
        "store_payload_json": payloads,
        "store_rows_indexes_and_free_pages": store_db - vectors - payloads,
        "snapshot_vectors_in_index_faiss": vector_bytes,
        "snapshot_graph_links_in_index_faiss": index_file - vector_bytes,
        "snapshot_payloads_jsonl": files.pop("payloads.jsonl"),
        "snapshot_payload_columns": sum(v for k, v in files.items() if k.startswith("payload")),
        "snapshot_labels_alive_manifest": sum(v for k, v in files.items() if not k.startswith("payload")),
    }
    return {k: round(v / n, 1) for k, v in parts.items()}


def build(folder: Path, n: int) -> None:
    import faiss
    import sqlalchemy

    from metamedia.vectors import CollectionConfig, VectorDB
    from metamedia.vectors.synthetic import ClusteredDataset

    rng = np.random.default_rng(7)
    vectors = ClusteredDataset(DIM, 50, seed=1).sample(n, seed=2)[0].astype(np.float32)
    payloads = [
        {
            "year": int(rng.integers(1920, 2025)),
            "genres": [GENRES[j] for j in rng.choice(len(GENRES), 2, replace=False)],
            "rating": round(float(rng.random() * 10), 1),
            "type": "movie" if rng.random() < 0.8 else "tv",
            "vhash": f"{rng.integers(2**62):024x}",
        }
        for _ in range(n)
    ]
    db = VectorDB(sqlalchemy.create_engine(f"sqlite:///{folder / 'store.db'}"), folder)
    col = db.create_collection(CollectionConfig(name="bench", dim=DIM, ef_construction=40))
    for start in range(0, n, 10_000):
        col.upsert(np.arange(start, min(n, start + 10_000)), vectors[start : start + 10_000], payloads[start : start + 10_000])
    db.snapshot_all()
    db.close()
    faiss.normalize_L2(vectors)
    raw = faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT)
    raw.hnsw.efConstruction = 40
    raw.add(vectors)
    faiss.write_index(raw, str(folder / "raw.faiss"))


def without_columns(src: Path, dest: Path) -> None:
    """A copy of the collection whose snapshot lacks the binary payload columns."""
    from metamedia.vectors.snapshot import COLUMN_FILES, TEXTS_FILE

    shutil.copytree(src, dest)
    folder = dest / "vectors" / "bench"
    snapshot = folder / "snapshots" / (folder / "CURRENT").read_text()
    manifest = json.loads((snapshot / "manifest.json").read_text())
    for name in (*COLUMN_FILES, TEXTS_FILE):
        (snapshot / name).unlink()
        del manifest["files"][name]
    (snapshot / "manifest.json").write_text(json.dumps(manifest))


def disk_bytes(folder: Path, exclude: tuple[str, ...] = ()) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name not in exclude)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(child(args.child[0], Path(args.child[1])))
        return 0
    machine = describe_machine()
    with tempfile.TemporaryDirectory(prefix="reopen-") as tmp:
        new, old = Path(tmp) / "new", Path(tmp) / "old"
        new.mkdir()
        t0 = time.perf_counter()
        build(new, args.n)
        build_s = time.perf_counter() - t0
        without_columns(new, old)
        times: dict[str, list[float]] = {
            "faiss": [],
            "metamedia": [],
            "metamedia (JSON payloads)": [],
            "store-vectors": [],
        }
        where = {"faiss": new, "metamedia": new, "metamedia (JSON payloads)": old, "store-vectors": new}
        kinds = {"faiss": "faiss", "metamedia": "mm", "metamedia (JSON payloads)": "mm", "store-vectors": "store-vectors"}
        for r in range(args.rounds):
            for kind in list(times) if r % 2 == 0 else reversed(list(times)):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", kinds[kind], str(where[kind])],
                    capture_output=True, text=True, check=True,
                )
                times[kind].append(float(out.stdout.strip().splitlines()[-1]))
        breakdown = disk_breakdown(new, args.n)
        # What the second copy buys: without a snapshot (lost, damaged, or never written before a
        # kill -9) the collection is rebuilt from the store of record. Once, at the end: it rewrites
        # the index files of `old`, which no later measurement reads.
        shutil.rmtree(old / "vectors" / "bench" / "snapshots")
        (old / "vectors" / "bench" / "CURRENT").unlink()
        out = subprocess.run(
            [sys.executable, __file__, "--child", "rebuild", str(old)], capture_output=True, text=True, check=True
        )
        rebuild_s = float(out.stdout.strip().splitlines()[-1])
        one_copy = args.n * DIM * 4
        store_db = sum(p.stat().st_size for p in new.glob("store.db*"))
        snapshot_dir = new / "vectors"
        disk = {
            "one_copy_bytes_per_vector": DIM * 4,
            "raw_faiss_file": (new / "raw.faiss").stat().st_size / args.n,
            "metamedia_store_db": store_db / args.n,
            "metamedia_snapshot": disk_bytes(snapshot_dir) / args.n,
        }
        disk["metamedia_total"] = disk["metamedia_store_db"] + disk["metamedia_snapshot"]
        disk["metamedia_total_vs_one_copy"] = disk["metamedia_total"] * args.n / one_copy
        disk["breakdown"] = breakdown
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "machine": machine | {"load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "n": args.n,
        "dim": DIM,
        "build_s": round(build_s, 1),
        "reopen_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "reopen_median_s": med,
        "reopen_vs_faiss": {k: med[k] / med["faiss"] for k in med},
        "rebuild_from_store_s": round(rebuild_s, 2),
        "rebuild_vs_reopen": round(rebuild_s / med["metamedia"], 1),
        "disk_bytes_per_vector": disk,
    }
    out = ROOT / "bench" / "results" / f"reopen-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("reopen_median_s", "reopen_vs_faiss", "rebuild_from_store_s", "disk_bytes_per_vector")}, indent=1))
    print("wrote", out.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
