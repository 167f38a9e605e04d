"""all-MiniLM-L6-v2 on ONNX Runtime: the tokenizer, the exported graph, mean pooling and L2 normalise.

Gives the same vectors as sentence-transformers (fp32 graph, same tokenizer, same truncation, same
pooling; the agreement is tested) for a fraction of its per-call overhead on one query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .onnx_export import MANIFEST, ONNX_FILE


class OnnxEncoder:
    """One ONNX Runtime session over the exported transformer, on a fixed number of CPU threads."""

    def __init__(self, model_dir: Path, *, threads: int = 1) -> None:
        # deferred: onnxruntime and tokenizers load with the first session, not on import
        import onnxruntime as ort
        from tokenizers import Tokenizer

        manifest = json.loads((model_dir / MANIFEST).read_text())
        self.max_length = int(manifest.get("max_seq_length", 256))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.no_padding()  # tokenizer.json pads to a fixed 128; batches are padded per batch below
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.threads = max(1, threads)
        self.session: Any = ort.InferenceSession(
            str(model_dir / ONNX_FILE), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """(n, 384) float32, unit-length rows. Texts are sorted by token count and run `batch_size` at a
        time, each batch padded only to its longest text (as sentence-transformers does)."""
        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), max(1, batch_size)):
            rows = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                n = len(encodings[i].ids)
                ids[r, :n] = encodings[i].ids
                mask[r, :n] = 1
            (hidden,) = self.session.run(
                None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            )
            out[rows] = _mean_pool_normalise(hidden, mask)
        return out


def _mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask[:, :, None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)
