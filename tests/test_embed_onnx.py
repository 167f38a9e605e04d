"""Query embeddings on ONNX Runtime agree with sentence-transformers; the export is checked, not trusted."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from metamedia.embed import TextEmbedder
from metamedia.embed.model import packaged_model_path
from metamedia.embed.onnx_export import (
    MANIFEST,
    ONNX_FILE,
    SIDE_FILES,
    OnnxExportInvalid,
    export_onnx,
    onnx_model_dir,
    verify_export,
)
from metamedia.embed.onnx_runtime import OnnxEncoder
from metamedia.errors import BackendUnavailable, InvalidInput

TEXTS = [
    "space opera with a lonely robot",
    "a heist gone wrong in 1970s Marseille",
    "feel-good",
    "",
    "Épopée — 東京 café ünïcode 🎬 naïve façade",
    "THE GODFATHER part II",
    "a film " * 400,  # past the 256-token window: truncated the same way
    "Two detectives track a serial killer who uses the seven deadly sins as his motives.",
    "Un film français sur l'amour, la guerre et la mer.",
    "1999 2001 007 3.14",
]


@pytest.fixture(scope="module")
def torch_vectors(embedder) -> np.ndarray:  # type: ignore[no-untyped-def]
    model = embedder._load()
    return np.asarray(model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True), dtype=np.float32)


def test_export_is_installed_and_matches_its_manifest_and_the_shipped_weights() -> None:
    manifest = verify_export(onnx_model_dir(), source_dir=packaged_model_path())
    assert manifest["precision"] == "fp32" and manifest["opset"] == 17
    assert (onnx_model_dir() / ONNX_FILE).stat().st_size > 80_000_000  # fp32, not quantised


def test_onnx_vectors_agree_with_sentence_transformers(torch_vectors: np.ndarray) -> None:
    encoder = OnnxEncoder(onnx_model_dir(), threads=1)
    batch = encoder.encode(TEXTS)  # padded together
    single = np.stack([encoder.encode([t])[0] for t in TEXTS])  # one at a time, like queries
    for got in (batch, single):
        assert got.shape == (len(TEXTS), 384) and got.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert float((got * torch_vectors).sum(axis=1).min()) >= 0.9999


def test_engine_embedder_runs_queries_on_onnx_with_the_same_vectors(
    embedder, torch_vectors: np.ndarray  # type: ignore[no-untyped-def]
) -> None:
    assert embedder.query_backend == "onnxruntime"
    queries = np.stack([embedder.encode_query(t + " (q)") for t in TEXTS[:4]])
    model = embedder._load()
    reference = model.encode([t + " (q)" for t in TEXTS[:4]], normalize_embeddings=True, convert_to_numpy=True)
    assert float((queries * reference).sum(axis=1).min()) >= 0.9999
    few = embedder.encode(TEXTS[:3])  # a small write: query-sized work, also on ONNX Runtime
    assert float((few * torch_vectors[:3]).sum(axis=1).min()) >= 0.9999


def _copy_export(dest: Path) -> Path:
    """A copy of the export whose 90 MB graph is a symlink (the small files are real copies)."""
    src = onnx_model_dir()
    (dest / "onnx").mkdir(parents=True)
    (dest / ONNX_FILE).symlink_to(src / ONNX_FILE)
    for name in (*SIDE_FILES, MANIFEST):
        shutil.copyfile(src / name, dest / name)
    return dest


def test_damaged_or_missing_export_falls_back_to_torch_with_a_logged_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, torch_vectors: np.ndarray
) -> None:
    bad = _copy_export(tmp_path / "export")
    with open(bad / "vocab.txt", "a") as fh:
        fh.write("tampered\n")
    with pytest.raises(OnnxExportInvalid, match="vocab.txt"):
        verify_export(bad)
    embedder = TextEmbedder(onnx_dir=bad, query_threads=1, threads=1)
    with caplog.at_level(logging.WARNING, logger="metamedia.embed"):
        assert embedder.query_backend == "torch"
    assert "falls back to torch" in caplog.text and "vocab.txt" in caplog.text
    vec = embedder.encode_query(TEXTS[0])
    assert float(vec @ torch_vectors[0]) >= 0.9999

    with pytest.raises(BackendUnavailable, match="no ONNX export"):
        TextEmbedder(onnx_dir=tmp_path / "nowhere", backend="onnx").query_backend  # noqa: B018
    with pytest.raises(InvalidInput):
        TextEmbedder(backend="tensorflow")


def test_export_made_from_other_weights_is_refused(tmp_path: Path) -> None:
    copy = _copy_export(tmp_path / "export")
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["source_sha256"] = "0" * 64
    (copy / MANIFEST).write_text(json.dumps(manifest))
    verify_export(copy)  # the files themselves are intact
    with pytest.raises(OnnxExportInvalid, match="other weights"):
        verify_export(copy, source_dir=packaged_model_path())


@pytest.mark.slow
def test_export_is_reproducible(tmp_path: Path) -> None:
    """Exporting again gives the same bytes, so the manifest can be checked anywhere."""
    manifest = export_onnx(packaged_model_path(), tmp_path / "again")
    installed = json.loads((onnx_model_dir() / MANIFEST).read_text())
    assert manifest["files"] == installed["files"]
