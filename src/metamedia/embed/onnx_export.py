"""The ONNX export of the packaged all-MiniLM-L6-v2 weights: where it lives, how it is made and checked.

`make install` runs `python -m metamedia.embed.onnx_export`, which exports the shipped weights once
(fp32, opset 17, no quantisation) into one documented folder, laid out the way transformers.js
expects a local model (so the offline web app can serve the same files):

    models/all-MiniLM-L6-v2/            (repository root in a source checkout, gitignored)
        config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt
        onnx/model.onnx                  (the transformer; mean pooling + normalise run outside it)
        manifest.json                    (sha256 of every file above + of the source weights)

`onnx_model_dir()` finds that folder (METAMEDIA_ONNX_DIR overrides it); `verify_export()` checks the
manifest, so a truncated or stale export is refused rather than silently giving other vectors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ..errors import MetamediaError
from .weights import packaged_model_path

log = logging.getLogger("metamedia.embed")

MODEL_DIR_NAME = "all-MiniLM-L6-v2"
ONNX_FILE = "onnx/model.onnx"
MANIFEST = "manifest.json"
OPSET = 17
# Tokenizer and config files copied next to the ONNX graph (transformers.js reads them too).
SIDE_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)
SOURCE_WEIGHTS = "model.safetensors"
ENV_VAR = "METAMEDIA_ONNX_DIR"


class OnnxExportInvalid(MetamediaError):
    """The ONNX export is missing, incomplete, or was made from other weights."""


def _source_root() -> Path | None:
    """Repository root when running from a source checkout (pyproject.toml two levels above src/)."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "src" / "metamedia").is_dir() else None


def onnx_model_dir() -> Path:
    """The one folder holding the ONNX export: $METAMEDIA_ONNX_DIR, else `models/all-MiniLM-L6-v2` at
    the repository root (source checkout), else `~/.cache/metamedia/models/all-MiniLM-L6-v2`."""
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        return Path(override)
    root = _source_root()
    base = root / "models" if root else Path.home() / ".cache" / "metamedia" / "models"
    return base / MODEL_DIR_NAME


def onnx_model_file(model_dir: Path | None = None) -> Path:
    """Path of the ONNX graph inside the export folder."""
    return (model_dir or onnx_model_dir()) / ONNX_FILE


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_export(model_dir: Path | None = None, *, source_dir: Path | None = None) -> dict[str, Any]:
    """Check every file of the export against its manifest (and, given `source_dir`, that it was made
    from those weights). Returns the manifest; raises OnnxExportInvalid with the reason otherwise."""
    model_dir = model_dir or onnx_model_dir()
    manifest_path = model_dir / MANIFEST
    if not manifest_path.is_file():
        raise OnnxExportInvalid(f"no ONNX export at {model_dir} (run `make install`)")
    try:
        manifest = json.loads(manifest_path.read_text())
        files: dict[str, dict[str, Any]] = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise OnnxExportInvalid(f"unreadable manifest {manifest_path}: {exc}") from exc
    for rel in (ONNX_FILE, *SIDE_FILES):
        entry = files.get(rel)
        path = model_dir / rel
        if entry is None or not path.is_file():
            raise OnnxExportInvalid(f"ONNX export incomplete: {rel} missing")
        if path.stat().st_size != entry["bytes"] or sha256_file(path) != entry["sha256"]:
            raise OnnxExportInvalid(f"ONNX export damaged: {rel} does not match its manifest")
    if source_dir is not None:
        weights = source_dir / SOURCE_WEIGHTS
        if weights.is_file() and sha256_file(weights) != manifest.get("source_sha256"):
            raise OnnxExportInvalid("ONNX export was made from other weights than the installed model")
    return dict(manifest)


def export_onnx(source_dir: Path, model_dir: Path | None = None, *, force: bool = False) -> dict[str, Any]:
    """Export the sentence-transformers model in `source_dir` to ONNX in `model_dir` and write its manifest.

    Does nothing when a valid export of the same weights is already there (unless `force`). The files
    are written to a temporary sibling folder and renamed into place, so a crash never leaves half an
    export behind a valid-looking manifest.
    """
    model_dir = model_dir or onnx_model_dir()
    if not force:
        try:
            manifest = verify_export(model_dir, source_dir=source_dir)
            log.info("ONNX export at %s is current", model_dir)
            return manifest
        except OnnxExportInvalid as why:
            log.info("exporting ONNX model: %s", why)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # deferred: onnx, torch and transformers are needed only to make the export (install time)
    import onnx
    import torch
    from transformers import AutoModel

    model_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".onnx-export-", dir=model_dir.parent))
    try:
        (work / "onnx").mkdir()
        model = AutoModel.from_pretrained(str(source_dir), local_files_only=True)
        model.eval()

        class Encoder(torch.nn.Module):
            """BERT body only: token embeddings out; pooling stays in numpy, like the browser does it."""

            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        dummy = torch.ones((2, 8), dtype=torch.int64)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about BERT's mask code, not about our graph
            torch.onnx.export(
                Encoder(model),
                (dummy, dummy, torch.zeros_like(dummy)),
                str(work / ONNX_FILE),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "sequence"},
                    "attention_mask": {0: "batch", 1: "sequence"},
                    "token_type_ids": {0: "batch", 1: "sequence"},
                    "last_hidden_state": {0: "batch", 1: "sequence"},
                },
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        onnx.checker.check_model(str(work / ONNX_FILE))
        for name in SIDE_FILES:
            shutil.copyfile(source_dir / name, work / name)
        manifest = {
            "model": MODEL_DIR_NAME,
            "source_sha256": sha256_file(source_dir / SOURCE_WEIGHTS),
            "opset": OPSET,
            "precision": "fp32",
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "outputs": "last_hidden_state (mean pooling over attention_mask, then L2 normalise)",
            "max_seq_length": _max_seq_length(source_dir),
            "files": {
                rel: {"sha256": sha256_file(work / rel), "bytes": (work / rel).stat().st_size}
                for rel in (ONNX_FILE, *SIDE_FILES)
            },
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        work.chmod(0o755)  # mkdtemp makes it private; the web app serves these files
        if model_dir.exists():
            shutil.rmtree(model_dir)
        os.replace(work, model_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    log.info("ONNX export written to %s", model_dir)
    return manifest


def _max_seq_length(source_dir: Path) -> int:
    try:
        return int(json.loads((source_dir / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


def main(argv: list[str] | None = None) -> int:
    """`python -m metamedia.embed.onnx_export [--force] [--out DIR]`: export (if needed) and verify."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--force", action="store_true", help="export even when a valid export exists")
    parser.add_argument("--out", type=Path, default=None, help="export folder (default: onnx_model_dir())")
    parser.add_argument("--source", type=Path, default=None, help="model folder (default: packaged weights)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    source = args.source or packaged_model_path()
    out = args.out or onnx_model_dir()
    try:
        manifest = export_onnx(source, out, force=args.force)
        verify_export(out, source_dir=source)
    except OnnxExportInvalid as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {ONNX_FILE} sha256 {manifest['files'][ONNX_FILE]['sha256'][:16]}… verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
