"""Shipped text embeddings: a catalog's vectors computed once, bundled beside it, reused on load.

A bundle is a compressed `.npz` holding, for every item text, the content hash that keys the
embedding cache (embed.hybrid.text_hash) and its all-MiniLM-L6-v2 vector as int8 with one scale
per row (cosine to the float32 vector above 0.9999). It is tagged with the SHA-256 of every model
file that shapes the vectors; a bundle whose tag differs from the installed model is not used.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..errors import MetamediaError

log = logging.getLogger("metamedia.embed")

FORMAT = "metamedia-text-embeddings/1"
# Files that decide the vectors (README, licence notes and training-data lists do not).
MODEL_FILES = (
    "config.json",
    "config_sentence_transformers.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "model.safetensors",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
)


class BundleMismatch(MetamediaError):
    """A bundle of shipped embeddings does not fit the installed model (or cannot be read)."""


@cache
def model_fingerprint(model_path: Path) -> dict[str, str]:
    """SHA-256 of each model file that exists (relative path -> hex digest)."""
    out: dict[str, str] = {}
    for name in MODEL_FILES:
        path = model_path / name
        if path.is_file():
            digest = hashlib.sha256()
            with path.open("rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
            out[name] = digest.hexdigest()
    return out


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 codes and one float32 scale per row (symmetric, max-abs)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scales = np.maximum(np.abs(vectors).max(axis=1), 1e-12) / 127.0
    codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales.astype(np.float32)


def dequantize(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Unit-length float32 vectors back from int8 codes and row scales."""
    vectors = codes.astype(np.float32) * scales[:, None]
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors


@dataclass(frozen=True)
class EmbeddingBundle:
    model_name: str
    fingerprint: dict[str, str]
    vectors: dict[str, np.ndarray]  # content hash (hex) -> unit float32 vector


def bundle_path_for(catalog: Path) -> Path:
    """Where a catalog's shipped embeddings live: `demo-catalog.jsonl.gz` -> `demo-catalog.vectors.npz`."""
    name = catalog.name
    for suffix in (".gz", ".jsonl", ".csv"):
        name = name.removesuffix(suffix)
    return catalog.with_name(f"{name}.vectors.npz")


def write_bundle(
    path: Path, model_name: str, fingerprint: dict[str, str], vectors: dict[str, np.ndarray]
) -> None:
    hashes = sorted(vectors)
    matrix = np.stack([vectors[h] for h in hashes]) if hashes else np.zeros((0, 384), np.float32)
    codes, scales = quantize(matrix)
    digests = np.frombuffer(b"".join(bytes.fromhex(h) for h in hashes), dtype=np.uint8).reshape(-1, 32)
    meta = json.dumps({"format": FORMAT, "model": model_name, "fingerprint": fingerprint}, sort_keys=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, meta=np.array(meta), hashes=digests, codes=codes, scales=scales)
    tmp.replace(path)


def read_bundle(path: Path) -> EmbeddingBundle:
    """Read a bundle (BundleMismatch when it is missing or not a bundle)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            digests, codes, scales = data["hashes"], data["codes"], data["scales"]
    except (OSError, ValueError, KeyError) as exc:
        raise BundleMismatch(f"cannot read shipped embeddings {path.name}: {exc}") from exc
    if meta.get("format") != FORMAT:
        raise BundleMismatch(f"{path.name} is not a {FORMAT} bundle")
    hashes = [row.tobytes().hex() for row in digests]
    vectors = dequantize(codes, scales)
    return EmbeddingBundle(meta["model"], dict(meta["fingerprint"]), dict(zip(hashes, vectors, strict=True)))


def load_matching_bundle(path: Path, model_name: str, model_path: Path) -> EmbeddingBundle:
    """The bundle at `path` if it was made by the installed model, else BundleMismatch saying why."""
    bundle = read_bundle(path)
    if bundle.model_name != model_name:
        raise BundleMismatch(f"{path.name} was made by {bundle.model_name}, not {model_name}")
    installed = model_fingerprint(model_path)
    differ = sorted(
        name
        for name in set(installed) | set(bundle.fingerprint)
        if installed.get(name) != bundle.fingerprint.get(name)
    )
    if differ:
        raise BundleMismatch(
            f"{path.name} was made by other model files than those installed at {model_path.name} "
            f"(differ: {', '.join(differ)})"
        )
    return bundle
