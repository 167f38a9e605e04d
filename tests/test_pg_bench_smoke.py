"""bench/pg_bench.py end to end at a tiny size on the session PostgreSQL: every section of the
report is there, metamedia-pg finds the true neighbours and keeps the filtered contract."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.postgres
BENCH = Path(__file__).resolve().parents[1] / "bench" / "pg_bench.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pg_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pg_bench_runs_and_metamedia_keeps_its_contract(pg_url: str, tmp_path: Path) -> None:
    pg_bench = load_bench()
    report = pg_bench.run(
        pg_url,
        n=2000,
        dim=64,
        n_queries=60,
        filter_queries=30,
        overhead_queries=20,
        raw_during_n=500,
        log=lambda _line: None,
    )
    path = tmp_path / "pg.json"
    path.write_text(json.dumps(report))
    saved = json.loads(path.read_text())

    assert saved["machine"]["pgvector"] and saved["machine"]["postgres"].startswith("16")
    assert set(saved["insert"]) == {
        "raw_copy_into_indexed_table",
        "raw_copy_then_index",
        "metamedia_pg_upsert",
        "embedded_upsert",
    }
    assert all(row["rows_per_s"] > 0 for row in saved["insert"].values())
    assert saved["insert"]["raw_copy_then_index"]["index_build_s"] >= 0

    for ef in ("40", "100"):
        rows = saved["search"][ef]
        assert set(rows) == {"raw_pg", "metamedia_pg", "embedded"}
        assert rows["metamedia_pg"]["recall_at_10"] >= 0.95
        assert rows["metamedia_pg"]["p50_us"] > 0 and rows["metamedia_pg"]["p50_vs_raw_pg"] > 0

    for selectivity in ("0.01", "0.1"):
        block = saved["filtered"][selectivity]
        assert block["matching"] >= 10  # so every query must get k results
        for engine in ("raw_pg_ef40", "raw_pg_ef100", "raw_pg_ef40_generic_plan", "raw_pg_exact"):
            assert engine in block
        assert block["raw_pg_exact"]["recall_at_10"] == 1.0
        assert block["metamedia_pg"]["short_queries"] == 0
        assert block["metamedia_pg"]["recall_at_10"] >= 0.99
        assert block["embedded"]["short_queries"] == 0
        assert set(block["metamedia_pg_statements"]) == {"table_size", "planner_estimate", "exact_query"}

    assert {
        "raw_binary_prepared",
        "search_pool_same_statement",
        "psycopg_pool_same_statement",
        "metamedia_pg_search",
    } <= set(saved["overhead"])
    page = pg_bench.markdown(saved, path, before=saved, before_path=path)
    for heading in (
        "### Insert",
        "### Unfiltered search",
        "### Filtered search contract",
        "### Where",
        "### Before and after",
    ):
        assert heading in page
    assert "Goal metamedia-pg ≤ 1.3x raw pgvector" in page


def test_pg_bench_filtered_only_run_keeps_the_contract(pg_url: str, tmp_path: Path) -> None:
    pg_bench = load_bench()
    report = pg_bench.run(
        pg_url, n=2000, dim=32, n_queries=20, filter_queries=20, filtered_only=True, log=lambda _: None
    )
    assert "search" not in report and "overhead" not in report and "embedded_upsert" not in report["insert"]
    assert report["insert"]["metamedia_pg_upsert"]["index_build_s"] >= 0
    for selectivity in ("0.01", "0.1"):
        block = report["filtered"][selectivity]
        assert "embedded" not in block
        assert block["metamedia_pg"]["short_queries"] == 0 and block["metamedia_pg"]["recall_at_10"] == 1.0
        assert block["metamedia_pg_plan"]["typed_only_scan"] is True
        assert block["metamedia_pg_plan"]["covering"] == ["bucket"]
    page = pg_bench.filtered_markdown(report, tmp_path / "pg.json")
    assert "### Filtered search contract" in page and "--filtered-only" in page
