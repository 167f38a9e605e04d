"""Search quality on a public benchmark built from the demo catalog, and /search latency before vs after.

Systems, side by side in one run, on the same catalog and queries (bench/search_quality_data.py):
- bm25: SQLite FTS5's bm25() over title, original title, keywords, genres, tagline and overview, every
  column weighted 1 (the plain BM25 a user would set up), any query word may match;
- dense: plain all-MiniLM-L6-v2 cosine between the query and each item's text (brute force, exact);
- rrf: reciprocal-rank fusion (k=60) of the top 100 of bm25 and dense;
- metamedia: `Engine.search(query, 10)` with its defaults (trend boost and diversity on).
Metrics: NDCG@10 (binary relevance) and Recall@10 (relevant found in the top 10 / all relevant), per
split (dev is for fitting, test for reporting) and per query family.

Latency: p50/p99 of the library search *including the query embedding* (the embedder's query cache is
cleared before every call) for the pipeline of a baseline commit (default: the commit before issue 15)
and for the current one, interleaved over the same queries on the same engine.

`--fit` fits the fusion weights (search/fusion.py) on the dev split by coordinate ascent and prints
them; with `--write` it stores them in src/metamedia/search/fusion_weights.json (the weights the
package ships), with the dev NDCG@10 of the fit.

    .venv/bin/python bench/search_quality.py [--data-dir var/bench-search] [--fit [--write]]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sqlalchemy import text  # noqa: E402

from machine import describe_machine, machine_line  # noqa: E402
from metamedia.demo import prime_shipped_embeddings  # noqa: E402
from metamedia.engine import Engine  # noqa: E402
from metamedia.search.fusion import FEATURES, WEIGHTS, weight_vector  # noqa: E402
from metamedia.search.parser import parse_query  # noqa: E402
from metamedia.settings import Settings  # noqa: E402
from search_quality_data import FAMILIES, Query, build, write_catalog  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_PATH = ROOT / "src" / "metamedia" / "search" / "fusion_weights.json"
BASELINE_COMMIT = "d6cca4b"  # main before issue 15 (no lexical stage)
K = 10
POOL = 100
RRF_K = 60
SYSTEMS = ("bm25", "dense", "rrf", "metamedia")
TEXT_FAMILIES = ("keyword", "known-item", "title")


def ndcg(ranked: list[int], relevant: set[int], k: int = K) -> float:
    gains = sum(1.0 / np.log2(i + 2) for i, r in enumerate(ranked[:k]) if r in relevant)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(relevant))))
    return float(gains / ideal) if ideal else 0.0


def recall(ranked: list[int], relevant: set[int], k: int = K) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


class Baselines:
    """Plain BM25 (FTS5, unweighted columns), plain dense cosine and their RRF."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        items = list(engine.store.iter_items())
        self.ids = np.array([it.id for it in items])
        vecs = engine.text_vectors(items)
        self.vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
        self._bm25 = text(
            "SELECT rowid FROM items_fts WHERE items_fts MATCH :m ORDER BY bm25(items_fts) LIMIT :n"
        )

    def bm25(self, query: str, n: int = POOL) -> list[int]:
        from metamedia.store.lexical import query_terms

        terms = query_terms(query)
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        with self.engine.store.db.connect() as conn:
            return [int(r[0]) for r in conn.execute(self._bm25, {"m": match, "n": n})]

    def dense(self, query: str, n: int = POOL) -> list[int]:
        q = self.engine.embedder.encode_query(query)
        sims = self.vecs @ (q / max(float(np.linalg.norm(q)), 1e-9))
        top = np.argsort(-sims)[:n]
        return [int(i) for i in self.ids[top]]

    def rrf(self, query: str) -> list[int]:
        scores: dict[int, float] = {}
        for ranked in (self.bm25(query), self.dense(query)):
            for rank, item_id in enumerate(ranked):
                scores[item_id] = scores.get(item_id, 0.0) + 1.0 / (RRF_K + rank + 1)
        return sorted(scores, key=lambda i: -scores[i])[:K]


def open_engine(data_dir: Path, catalog: list[dict]) -> Engine:
    """The benchmark engine; its catalog is (re)ingested every run (unchanged items cost nothing, and
    the embedding cache in the data folder makes a re-run skip the model)."""
    engine = Engine(Settings(data_dir=data_dir))
    # The demo's shipped text embeddings (data/demo-catalog.vectors.npz) cover every unchanged item;
    # only the items whose keywords or tagline the benchmark removed go through the model.
    prime_shipped_embeddings(engine, ROOT / "data" / "demo-catalog.vectors.npz")
    path = data_dir / "catalog.jsonl.gz"
    write_catalog(catalog, path)
    started = time.time()
    report = engine.ingest([path])
    repaired = engine.repair_index()  # an interrupted earlier run can leave items stored, not indexed
    if repaired["repaired"]:
        print(f"index repaired: {repaired}", flush=True)
    print(
        f"catalog: {engine.count()} items, {len(report.changed_ids)} changed, {time.time() - started:.0f} s",
        flush=True,
    )
    return engine


def evaluate(engine: Engine, queries: list[Query], by_tmdb: dict[int, int]) -> dict[str, Any]:
    base = Baselines(engine)
    per: dict[str, dict[str, list[tuple[str, str, float, float]]]] = {s: {} for s in SYSTEMS}
    for q in queries:
        relevant = {by_tmdb[t] for t in q.relevant if t in by_tmdb}
        runs = {
            "bm25": base.bm25(q.text)[:K],
            "dense": base.dense(q.text)[:K],
            "rrf": base.rrf(q.text),
            "metamedia": [r["id"] for r in engine.search_pipeline.search(q.text, K)["results"]],
        }
        for system, ranked in runs.items():
            per[system].setdefault(q.split, []).append(
                (q.family, q.text, ndcg(ranked, relevant), recall(ranked, relevant))
            )
    out: dict[str, Any] = {}
    for system, splits in per.items():
        out[system] = {}
        for split, rows in splits.items():
            families = sorted({r[0] for r in rows})
            out[system][split] = {
                "ndcg@10": round(float(np.mean([r[2] for r in rows])), 4),
                "recall@10": round(float(np.mean([r[3] for r in rows])), 4),
                "queries": len(rows),
                "families": {
                    f: {
                        "ndcg@10": round(float(np.mean([r[2] for r in rows if r[0] == f])), 4),
                        "recall@10": round(float(np.mean([r[3] for r in rows if r[0] == f])), 4),
                        "queries": sum(1 for r in rows if r[0] == f),
                    }
                    for f in families
                },
            }
    return out


def fit(
    engine: Engine, queries: list[Query], by_tmdb: dict[int, int], fixed: set[str]
) -> tuple[dict[str, float], float, float]:
    """Coordinate ascent on the fusion weights, maximising mean NDCG@10 on the dev split; the
    `fixed` features keep their current weight."""

    # "like X" queries rank from X's vector (no fused features): they say nothing about the weights.
    dev = [q for q in queries if q.split == "dev" and not parse_query(q.text).similar_to]
    data = []
    for q in dev:
        ids, features, bonus = engine.search_pipeline.candidate_features(q.text, K)
        relevant = {by_tmdb[t] for t in q.relevant if t in by_tmdb}
        data.append((np.array(ids), features, bonus, relevant))
    free = [i for i, name in enumerate(FEATURES) if name not in fixed]

    def score(w: np.ndarray) -> float:
        total = 0.0
        for ids, features, bonus, relevant in data:
            if len(ids) == 0:
                continue
            order = np.argsort(-(features @ w + bonus), kind="stable")[:K]
            total += ndcg([int(i) for i in ids[order]], relevant)
        return total / len(data)

    w = weight_vector()
    best = start = score(w)
    print(f"dev NDCG@10 with the current weights: {best:.4f}", flush=True)
    steps = [1.0, 0.5, 0.25, 0.1, 0.05]
    for step in steps:
        improved = True
        while improved:
            improved = False
            for i in free:
                for delta in (step, -step):
                    trial = w.copy()
                    trial[i] = max(0.0, trial[i] + delta)
                    value = score(trial)
                    if value > best + 1e-6:
                        w, best, improved = trial, value, True
        print(f"step {step}: dev NDCG@10 {best:.4f}", flush=True)
    weights = {name: round(float(v), 3) for name, v in zip(FEATURES, w, strict=True)}
    return weights, start, best


def _load_baseline_pipeline(commit: str) -> Any:
    """The search package of `commit`, importable beside the current one (relative imports to the
    rest of metamedia rewritten to absolute ones)."""
    package = f"baseline_search_{commit}"
    tmp = Path(tempfile.mkdtemp()) / package
    tmp.mkdir()
    for name in ("__init__", "pipeline", "parser", "lexicon", "reasons"):
        source = subprocess.run(
            ["git", "show", f"{commit}:src/metamedia/search/{name}.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        source = source.replace("from ..", "from metamedia.").replace(
            "from . import", f"from {package} import"
        )
        source = source.replace("from .", f"from {package}.")
        (tmp / f"{name}.py").write_text(source)
    spec = importlib.util.spec_from_file_location(
        package, tmp / "__init__.py", submodule_search_locations=[str(tmp)]
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[package] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    pipeline: types.ModuleType = importlib.import_module(f"{package}.pipeline")
    return pipeline.SearchPipeline


def latency(engine: Engine, queries: list[str], commit: str) -> dict[str, Any]:
    """p50/p99 including the query embedding, baseline and current pipeline interleaved."""
    pipelines = {"before": _load_baseline_pipeline(commit)(engine), "after": engine.search_pipeline}
    times: dict[str, list[float]] = {"before": [], "after": []}
    embedder = engine.embedder
    for q in queries[:5]:  # warm both
        for p in pipelines.values():
            p.search(q, K)
    for q in queries:
        for name, p in pipelines.items():
            with embedder._cache_lock:
                embedder._cache.clear()
            started = time.perf_counter()
            p.search(q, K)
            times[name].append((time.perf_counter() - started) * 1000)
    out: dict[str, Any] = {
        name: {
            "p50_ms": round(float(np.percentile(t, 50)), 2),
            "p99_ms": round(float(np.percentile(t, 99)), 2),
        }
        for name, t in times.items()
    }
    out["p50_ratio_after_vs_before"] = round(out["after"]["p50_ms"] / out["before"]["p50_ms"], 3)
    out["queries"] = len(queries)
    out["baseline_commit"] = commit
    return out


def _family_mean(split: dict[str, Any], families: tuple[str, ...]) -> float:
    """Mean NDCG@10 over the queries of some families (each query weighs the same)."""
    fam = split["families"]
    n = sum(fam[f]["queries"] for f in families if f in fam)
    return sum(fam[f]["ndcg@10"] * fam[f]["queries"] for f in families if f in fam) / max(n, 1)


def markdown(results: dict[str, Any]) -> str:
    q = results["quality"]
    lines = [
        "| system | test NDCG@10 | test Recall@10 | dev NDCG@10 | " + " | ".join(FAMILIES) + " |",
        "|---|---|---|---|" + "---|" * len(FAMILIES),
    ]
    for system in SYSTEMS:
        t, d = q[system]["test"], q[system]["dev"]
        fam = t["families"]
        lines.append(
            f"| {system} | {t['ndcg@10']:.3f} | {t['recall@10']:.3f} | {d['ndcg@10']:.3f} | "
            + " | ".join(f"{fam[f]['ndcg@10']:.3f}" if f in fam else "-" for f in FAMILIES)
            + " |"
        )
    r = results["ratios_test_ndcg"]
    lat = results["latency"]
    t = results["ratios_test_ndcg_text_families"]
    lines += [
        "",
        f"metamedia / bm25 = **{r['metamedia_vs_bm25']:.2f}x**, metamedia / rrf = **{r['metamedia_vs_rrf']:.2f}x**, "
        f"metamedia / dense = **{r['metamedia_vs_dense']:.2f}x** (test NDCG@10; family columns are test NDCG@10).",
        "",
        f"On the text families alone ({', '.join(t['families'])}, no structured intent to parse): "
        f"metamedia / bm25 = **{t['metamedia_vs_bm25']:.2f}x**, metamedia / rrf = **{t['metamedia_vs_rrf']:.2f}x**.",
        "",
        f"Search latency incl. query embedding ({lat['queries']} queries, embedder cache cleared per call): "
        f"before (commit {lat['baseline_commit']}) p50 {lat['before']['p50_ms']} ms / p99 {lat['before']['p99_ms']} ms, "
        f"after p50 {lat['after']['p50_ms']} ms / p99 {lat['after']['p99_ms']} ms: "
        f"**{lat['p50_ratio_after_vs_before']:.2f}x** p50.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", default=str(ROOT / "data" / "demo-catalog.jsonl.gz"))
    ap.add_argument("--data-dir", default=str(ROOT / "var" / "bench-search"))
    ap.add_argument("--fit", action="store_true", help="fit fusion weights on the dev split and print them")
    ap.add_argument(
        "--baseline", default=BASELINE_COMMIT, help="commit whose pipeline is 'before' in latency"
    )
    ap.add_argument("--write", action="store_true", help="with --fit: store the weights in the package")
    ap.add_argument("--fixed", default="", help="comma-separated features whose weight --fit keeps")
    ap.add_argument("--latency-queries", type=int, default=120)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "search_quality.json"))
    args = ap.parse_args()

    catalog, queries = build(Path(args.catalog))
    engine = open_engine(Path(args.data_dir), catalog)
    by_tmdb = engine.store.find_ids("tmdb_id", [r["tmdb_id"] for r in catalog])
    if args.fit:
        fixed = {name for name in args.fixed.split(",") if name}
        weights, start, best = fit(engine, queries, by_tmdb, fixed)
        print(json.dumps(weights, indent=2))
        if args.write:
            record = {
                "fitted_by": "bench/search_quality.py --fit --write",
                "fitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "objective": "mean NDCG@10 on the dev split (coordinate ascent)",
                "dev_queries": sum(1 for q in queries if q.split == "dev"),
                "dev_ndcg@10_before": round(start, 4),
                "dev_ndcg@10_after": round(best, 4),
                "fixed": sorted(fixed),
                "weights": weights,
            }
            WEIGHTS_PATH.write_text(json.dumps(record, indent=2) + "\n")
            print(f"written to {WEIGHTS_PATH.relative_to(ROOT)}")
        engine.close()
        return
    started = time.time()
    quality = evaluate(engine, queries, by_tmdb)
    test = {s: quality[s]["test"]["ndcg@10"] for s in SYSTEMS}
    sample = [q.text for q in queries if q.split == "test"][: args.latency_queries]
    results: dict[str, Any] = {
        "benchmark": "search_quality",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "catalog": {
            "items": engine.count(),
            "source": "data/demo-catalog.jsonl.gz, query keywords and query taglines removed",
        },
        "queries": {
            split: {f: sum(1 for q in queries if q.split == split and q.family == f) for f in FAMILIES}
            for split in ("dev", "test")
        },
        "fusion_weights": WEIGHTS,
        "quality": quality,
        "ratios_test_ndcg": {
            "metamedia_vs_bm25": round(test["metamedia"] / test["bm25"], 3),
            "metamedia_vs_dense": round(test["metamedia"] / test["dense"], 3),
            "metamedia_vs_rrf": round(test["metamedia"] / test["rrf"], 3),
        },
        "latency": latency(engine, sample, args.baseline),
    }
    text_only = {s: _family_mean(quality[s]["test"], TEXT_FAMILIES) for s in SYSTEMS}
    results["ratios_test_ndcg_text_families"] = {
        "families": list(TEXT_FAMILIES),
        "metamedia_vs_bm25": round(text_only["metamedia"] / text_only["bm25"], 3),
        "metamedia_vs_rrf": round(text_only["metamedia"] / text_only["rrf"], 3),
    }
    results["seconds"] = round(time.time() - started, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    Path(args.out).with_suffix(".md").write_text(machine_line(results["machine"]) + "\n\n" + table + "\n")
    print(table)
    engine.close()


if __name__ == "__main__":
    main()
