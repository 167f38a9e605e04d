"""The demo catalog's shipped text embeddings: equal to what the installed model computes, checked
against the model files on load, and skipped (with the reason logged) when they do not fit."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from metamedia.demo import DemoFiles, load_demo_catalog
from metamedia.embed.bundle import (
    BundleMismatch,
    bundle_path_for,
    load_matching_bundle,
    model_fingerprint,
    read_bundle,
    write_bundle,
)
from metamedia.embed.hybrid import item_text, text_hash
from metamedia.engine import Engine
from metamedia.ingest.run import ingest_files
from metamedia.settings import Settings
from metamedia.store.factory import open_store
from tests.conftest import DEMO_CATALOG, demo_catalog_slice

MODEL = "all-MiniLM-L6-v2"
BUNDLE = bundle_path_for(DEMO_CATALOG)
QUERIES = [
    "space adventure with aliens",
    "a heist that goes wrong",
    "romantic comedy in new york",
    "haunted house horror",
    "animated film about toys",
    "world war two soldiers",
    "detective solving a murder",
    "coming of age story at high school",
    "superhero saves the city",
    "a documentary about music",
    "survival in the wilderness",
    "political thriller and conspiracy",
]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Item texts of 600 real demo items, as the ingest stores them (merged, normalised)."""
    tmp = tmp_path_factory.mktemp("bundle_sample")
    store = open_store(f"sqlite:///{tmp}/s.db")
    ingest_files(store, [demo_catalog_slice(tmp / "demo600.jsonl", 600)], model_name=MODEL)
    texts = [item_text(item) for item in store.iter_items()]
    store.close()
    return texts


def test_the_bundle_is_tagged_with_the_installed_model_and_covers_the_catalog(
    sample: list[str], embedder
) -> None:  # type: ignore[no-untyped-def]
    bundle = load_matching_bundle(BUNDLE, MODEL, embedder.model_path)
    assert bundle.fingerprint == model_fingerprint(embedder.model_path)
    assert "model.safetensors" in bundle.fingerprint and "tokenizer.json" in bundle.fingerprint
    with np.load(BUNDLE) as raw:
        assert raw["codes"].dtype == np.int8 and raw["codes"].shape[1] == 384
        assert len(raw["codes"]) >= 13_000
    assert BUNDLE.stat().st_size < 8_000_000
    missing = [t for t in sample if text_hash(MODEL, t) not in bundle.vectors]
    assert missing == []  # rebuild with scripts/build_demo_vectors.py when the item text changes


def test_shipped_vectors_equal_recomputed_ones(sample: list[str], embedder) -> None:  # type: ignore[no-untyped-def]
    shipped_all = read_bundle(BUNDLE).vectors
    texts = sample[::2]
    shipped = np.stack([shipped_all[text_hash(MODEL, t)] for t in texts])
    fresh = embedder.encode(texts)
    cosines = np.einsum("ij,ij->i", shipped, fresh) / (
        np.linalg.norm(shipped, axis=1) * np.linalg.norm(fresh, axis=1)
    )
    assert len(texts) == 300 and cosines.min() >= 0.999
    queries = embedder.encode(QUERIES)
    for query, q in zip(QUERIES, queries, strict=True):
        top_shipped = set(np.argsort(-(shipped @ q))[:10])
        top_fresh = set(np.argsort(-(fresh @ q))[:10])
        assert len(top_shipped & top_fresh) / 10 >= 0.9, query


def small_demo(folder: Path, rows: int, fingerprint_change: dict[str, str] | None = None) -> Path:
    """A demo folder: the first `rows` demo items and their shipped vectors (optionally re-tagged)."""
    folder.mkdir(parents=True, exist_ok=True)
    catalog = demo_catalog_slice(folder / "demo.jsonl", rows)
    full = read_bundle(BUNDLE)
    write_bundle(
        bundle_path_for(catalog),
        full.model_name,
        {**full.fingerprint, **(fingerprint_change or {})},
        full.vectors,
    )
    return catalog


def test_a_matching_bundle_loads_the_demo_without_running_the_model(tmp_path: Path) -> None:
    catalog = small_demo(tmp_path / "demo", 120)
    assert DemoFiles.beside(catalog).vectors.is_file()
    with Engine(Settings(data_dir=tmp_path / "data")) as engine:
        report = load_demo_catalog(engine, catalog)
        assert report is not None and report.accepted == 120
        assert engine.count() == engine.media.count() == 120
        assert engine.embedder._model is None  # every text vector came from the bundle
        assert engine.check_index()["ok"]
        assert load_demo_catalog(engine, catalog) is None  # loaded once
        state = json.loads((tmp_path / "data" / "demo-state.json").read_text())
        assert state["catalog"] == "done"


def test_a_bundle_from_other_model_files_is_not_used_and_the_log_says_why(
    tmp_path: Path,
    embedder,
    caplog: pytest.LogCaptureFixture,  # type: ignore[no-untyped-def]
) -> None:
    catalog = small_demo(tmp_path / "demo", 30, {"model.safetensors": "0" * 64})
    with pytest.raises(BundleMismatch, match="model.safetensors"):
        load_matching_bundle(bundle_path_for(catalog), MODEL, embedder.model_path)
    caplog.set_level(logging.INFO, logger="metamedia")
    with Engine(Settings(data_dir=tmp_path / "data"), embedder=embedder) as engine:
        report = load_demo_catalog(engine, catalog)
        assert report is not None and engine.count() == engine.media.count() == 30
    warning = next(r.getMessage() for r in caplog.records if "shipped embeddings not used" in r.getMessage())
    assert "model.safetensors" in warning and "embedded instead" in warning


def test_an_unreadable_bundle_is_a_named_error(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "demo.vectors.npz"
    broken.write_bytes(b"not a bundle")
    with pytest.raises(BundleMismatch, match="cannot read"):
        load_matching_bundle(broken, MODEL, embedder.model_path)
