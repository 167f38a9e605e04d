"""Query and bulk embedding: sentence-transformers (torch) vs ONNX Runtime over the install-time export.

Both runtimes load in this one process and run in interleaved rounds, so machine load (a shared
2-core box) hits them alike; the ratios are the result, the absolute numbers are context. CPU per
query is the process's CPU time (all threads) divided by the queries encoded. Vector agreement is
the cosine between the two runtimes' vectors for the same texts.

    python bench/embed_bench.py [--queries 200] [--bulk 512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from machine import describe_machine, machine_line  # noqa: E402

WORDS = "love war dogs space time robots ghosts family money heist ocean desert night city train".split()


def catalog_texts(n: int) -> list[str]:
    """Item texts as ingest embeds them, from the bundled demo catalog."""
    from metamedia.embed.hybrid import item_text
    from metamedia.models import MediaItem

    out: list[str] = []
    with gzip.open(ROOT / "data" / "demo-catalog.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            fields = {k: row.get(k) for k in ("title", "tagline", "overview")}
            item = MediaItem(id=0, keywords=row.get("keywords") or [], genres=row.get("genres") or [], **fields)
            out.append(item_text(item))
            if len(out) >= n:
                break
    return out


def queries(n: int, salt: str) -> list[str]:
    rng = np.random.default_rng(abs(hash(salt)) % 2**32)
    return [f"a film about {' and '.join(rng.choice(WORDS, 3))} {salt}{i}" for i in range(n)]


def timed(fn: Callable[[str], Any], texts: list[str]) -> tuple[list[float], float]:
    lat = []
    cpu0 = time.process_time()
    for text in texts:
        t0 = time.perf_counter()
        fn(text)
        lat.append((time.perf_counter() - t0) * 1000)
    return lat, (time.process_time() - cpu0) * 1000 / len(texts)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=200, help="single queries per runtime per round")
    ap.add_argument("--bulk", type=int, default=512, help="catalog texts per bulk round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    machine = describe_machine()
    import torch
    from sentence_transformers import SentenceTransformer

    from metamedia.embed.model import packaged_model_path
    from metamedia.embed.onnx_export import onnx_model_dir, verify_export
    from metamedia.embed.onnx_runtime import OnnxEncoder

    manifest = verify_export(onnx_model_dir(), source_dir=packaged_model_path())
    st = SentenceTransformer(str(packaged_model_path()), device="cpu", local_files_only=True)
    cores = os.cpu_count() or 1
    ort = {t: OnnxEncoder(onnx_model_dir(), threads=t) for t in sorted({1, cores})}

    def torch_encode(texts: list[str], threads: int) -> np.ndarray:
        torch.set_num_threads(threads)
        return np.asarray(st.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True))

    # ---- agreement on queries and catalog texts (batch and one at a time) ----
    bulk = catalog_texts(args.bulk)
    probe = queries(100, "agree") + bulk[:200] + ["", "Épopée 東京 🎬", "word " * 400]
    a = torch_encode(probe, 1)
    b = ort[1].encode(probe)
    b1 = np.stack([ort[1].encode([t])[0] for t in probe[:100]])
    cos = np.concatenate([(a * b).sum(1), (a[:100] * b1).sum(1)])
    agreement = {"texts": len(probe), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}
    print(f"agreement over {len(probe)} texts: min cosine {cos.min():.7f}", flush=True)

    # ---- single queries, batch of one, one thread; interleaved rounds ----
    runners = {
        "torch": lambda q: torch_encode([q], 1),
        "onnxruntime": lambda q: ort[1].encode([q]),
    }
    for fn in runners.values():  # warm both
        timed(fn, queries(20, "warm"))
    single: dict[str, dict[str, list[float]]] = {k: {"lat": [], "cpu": []} for k in runners}
    for r in range(args.rounds):
        order = list(runners) if r % 2 == 0 else list(reversed(runners))
        for name in order:
            lat, cpu = timed(runners[name], queries(args.queries, f"{name}{r}"))
            single[name]["lat"] += lat
            single[name]["cpu"].append(cpu)
    single_out = {
        name: {
            "p50_ms": float(np.percentile(v["lat"], 50)),
            "p99_ms": float(np.percentile(v["lat"], 99)),
            "cpu_ms_per_query": float(statistics.median(v["cpu"])),
        }
        for name, v in single.items()
    }

    # ---- bulk: catalog texts in batches of 64, 1 thread and all cores ----
    bulk_out: dict[str, dict[str, float]] = {}
    for threads in sorted({1, cores}):
        fns: dict[str, Callable[[list[str]], Any]] = {
            "torch": lambda t, th=threads: torch_encode(t, th),
            "onnxruntime": lambda t, th=threads: ort[th].encode(t, batch_size=64),
        }
        rates: dict[str, list[float]] = {k: [] for k in fns}
        cpus: dict[str, list[float]] = {k: [] for k in fns}
        for r in range(max(2, args.rounds // 2)):
            for name in fns if r % 2 == 0 else reversed(list(fns)):
                cpu0, t0 = time.process_time(), time.perf_counter()
                fns[name](bulk)
                wall = time.perf_counter() - t0
                rates[name].append(len(bulk) / wall)
                cpus[name].append((time.process_time() - cpu0) * 1000 / len(bulk))
        for name in fns:
            bulk_out[f"{name}/{threads}t"] = {
                "texts_per_s": float(statistics.median(rates[name])),
                "cpu_ms_per_text": float(statistics.median(cpus[name])),
            }
    torch.set_num_threads(cores)
    machine["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    t, o = single_out["torch"], single_out["onnxruntime"]
    result = {
        "machine": machine,
        "export": {"onnx_sha256": manifest["files"]["onnx/model.onnx"]["sha256"], "precision": "fp32"},
        "agreement": agreement,
        "single_query": single_out,
        "single_query_ratio_onnx_vs_torch": {
            "cpu": o["cpu_ms_per_query"] / t["cpu_ms_per_query"],
            "p50": o["p50_ms"] / t["p50_ms"],
        },
        "bulk": bulk_out,
        "bulk_texts": len(bulk),
        "rounds": args.rounds,
    }
    out = args.out or ROOT / "bench" / "results" / f"embed-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(machine_line(machine), "| load at end", machine["load_avg_at_end"][0])
    print("| runtime | p50 ms | p99 ms | CPU ms/query |\n|---|---|---|---|")
    for name, v in single_out.items():
        print(f"| {name} | {v['p50_ms']:.2f} | {v['p99_ms']:.2f} | {v['cpu_ms_per_query']:.2f} |")
    ratio = result["single_query_ratio_onnx_vs_torch"]
    print(f"ONNX / torch: CPU {ratio['cpu']:.2f}x, p50 {ratio['p50']:.2f}x")
    print("| bulk runtime/threads | texts/s | CPU ms/text |\n|---|---|---|")
    for name, v in bulk_out.items():
        print(f"| {name} | {v['texts_per_s']:.0f} | {v['cpu_ms_per_text']:.2f} |")
    print("wrote", out.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
