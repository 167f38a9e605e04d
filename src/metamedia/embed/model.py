"""all-MiniLM-L6-v2 sentence embeddings, computed locally and never fetched over the network."""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailable, InvalidInput
from .onnx_export import OnnxExportInvalid, onnx_model_dir, verify_export
from .weights import packaged_model_path

log = logging.getLogger("metamedia.embed")

DIM = 384


SMALL_BATCH = 8
BACKENDS = ("auto", "onnx", "torch")
_verified: dict[tuple[str, str], tuple[float, ...]] = {}


def _stamp(*paths: Path) -> tuple[float, ...]:
    out: list[float] = []
    for path in paths:
        st = path.stat() if path.exists() else None
        out += [st.st_size, st.st_mtime] if st else [-1.0, -1.0]
    return tuple(out)


def check_onnx_export(model_dir: Path, source_dir: Path) -> None:
    """verify_export, remembered per process while neither folder's files change (hashing 180 MB
    on every engine start would cost a few hundred ms)."""
    key = (str(model_dir), str(source_dir))
    stamp = _stamp(
        model_dir / "manifest.json", model_dir / "onnx" / "model.onnx", source_dir / "model.safetensors"
    )
    if _verified.get(key) == stamp:
        return
    verify_export(model_dir, source_dir=source_dir)
    _verified[key] = stamp


class TextEmbedder:
    """Encodes text into L2-normalised 384-d float32 vectors (all-MiniLM-L6-v2, mean pooling).

    Queries and small writes run on ONNX Runtime over the export made at install time
    (`metamedia.embed.onnx_export`; same vectors, about a third of torch's CPU per query). Bulk
    encoding runs on `bulk_backend` (torch by default: faster on large batches here, see
    bench/README.md). Without a valid export (or with `backend="torch"`) everything runs on
    sentence-transformers and the reason is logged once. Models are loaded lazily on first use, from
    local files only (HF_HUB_OFFLINE is forced), and single-query encodings are kept in a small LRU cache.

    One forward pass runs at a time (torch already uses every core for one; concurrent passes from
    the server's worker threads only fight over them). Queries that arrive while the model is busy
    are encoded together in the next pass by one worker thread: under load, twenty waiting queries
    cost one batch, not twenty turns. Bulk encoding takes the model one batch (`batch_size`) at a time, so queries
    wait at most one batch behind an ingest.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        batch_size: int = 64,
        threads: int = 0,
        query_threads: int = 1,
        query_cache_size: int = 2048,
        backend: str = "auto",
        bulk_backend: str = "torch",
        onnx_dir: str | Path | None = None,
    ) -> None:
        if backend not in BACKENDS or bulk_backend not in ("onnx", "torch"):
            raise InvalidInput(
                f"unknown embedding backend {backend!r}/{bulk_backend!r}: use auto, onnx or torch"
            )
        self.model_path = Path(model_path) if model_path else packaged_model_path()
        self.backend = backend
        self.bulk_backend = bulk_backend
        self.onnx_dir = Path(onnx_dir) if onnx_dir else onnx_model_dir()
        self._onnx: dict[int, Any] = {}
        self._onnx_ok: bool | None = None
        self.fallback_reason = ""
        self.batch_size = batch_size
        self.threads = threads
        self.query_threads = query_threads
        self._threads_now = 0
        self.dim = DIM
        self.name = "all-MiniLM-L6-v2"
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = query_cache_size
        self._cache_lock = threading.Lock()
        self.cache_hits = 0
        self.cache_misses = 0
        self._model_lock = threading.Lock()
        self._queries: queue.SimpleQueue[tuple[str, Future[np.ndarray]]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._waiting_lock = threading.Lock()
        self.query_batches = 0

    def _load(self) -> Any:
        if self._model is not None:
            return self._model
        with self._load_lock:
            if self._model is None:
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                if not (self.model_path / "config.json").exists():
                    raise BackendUnavailable(f"no embedding model at {self.model_path}")
                # deferred: torch and transformers take seconds to import; only when the model is used
                import torch
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.utils.logging.disable_progress_bar()

                if self.threads <= 0:
                    self.threads = torch.get_num_threads()
                log.info("loading embedding model from %s", self.model_path)
                self._model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
        return self._model

    def onnx_available(self) -> bool:
        """Whether queries run on ONNX Runtime (decided once; the reason for torch is logged)."""
        if self._onnx_ok is None:
            with self._load_lock:
                if self._onnx_ok is None:
                    self._onnx_ok = self._check_onnx()
        return self._onnx_ok

    def _check_onnx(self) -> bool:
        if self.backend == "torch":
            self.fallback_reason = "embedding backend set to torch"
            return False
        try:
            # deferred: ONNX Runtime is probed only when the embedder first decides its runtime
            import onnxruntime  # noqa: F401

            check_onnx_export(self.onnx_dir, self.model_path)
        except (ImportError, OnnxExportInvalid) as exc:
            if self.backend == "onnx":
                raise BackendUnavailable(f"embedding backend onnx unavailable: {exc}") from exc
            self.fallback_reason = str(exc)
            log.warning("query embedding falls back to torch: %s", exc)
            return False
        return True

    def _onnx_encoder(self, threads: int) -> Any:
        threads = max(1, threads or self.threads or (os.cpu_count() or 1))
        encoder = self._onnx.get(threads)
        if encoder is None:
            with self._load_lock:
                encoder = self._onnx.get(threads)
                if encoder is None:
                    # deferred: the ONNX session module loads only when a query first runs on it
                    from .onnx_runtime import OnnxEncoder

                    log.info("loading ONNX embedding model from %s (%d threads)", self.onnx_dir, threads)
                    encoder = self._onnx[threads] = OnnxEncoder(self.onnx_dir, threads=threads)
        return encoder

    def _runner(self, small: bool) -> Any:
        """The model a pass runs on: ONNX Runtime for query-sized work (and bulk when `bulk_backend`
        is onnx) when the export is valid, else the sentence-transformers model."""
        if self.onnx_available() and (small or self.bulk_backend == "onnx"):
            return self._onnx_encoder(self.query_threads if small else self.threads)
        return self._load()

    @property
    def query_backend(self) -> str:
        """Which runtime embeds queries: onnxruntime or torch."""
        return "onnxruntime" if self.onnx_available() else "torch"

    def warm_up(self) -> None:
        """Load what queries run on, before traffic."""
        self._runner(small=True)

    def encode(self, texts: list[str], *, progress: bool = False) -> np.ndarray:
        """Embed many texts at once: (n, 384) float32, each row unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if progress:
            model = self._runner(small=False)
            with self._model_lock:
                return self._forward(model, texts, progress=True)
        if len(texts) < SMALL_BATCH and self.onnx_available():
            # A handful of texts (one item written through the API) on ONNX Runtime: run in the calling
            # thread, beside the query worker's batch (a session may run from several threads at once;
            # it works without the interpreter lock), so a write does not wait behind search batches.
            return np.asarray(self._forward(self._runner(small=True), texts, threads=self.query_threads))
        if len(texts) < SMALL_BATCH:
            # On torch, query-sized work joins the query queue, so it is served in arrival order with
            # the queries (a plain lock is not fair: under search load a write could lose the model to
            # the query worker for seconds).
            futures = [self._submit_query(text) for text in texts]
            return np.stack([future.result() for future in futures])
        parts = []
        model = self._runner(small=False)
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            with self._model_lock:
                parts.append(self._forward(model, chunk, threads=self.threads))
        return np.concatenate(parts)

    def _forward(
        self, model: Any, texts: list[str], *, progress: bool = False, threads: int = 0
    ) -> np.ndarray:
        """One forward pass on `threads` CPU threads (0 = `self.threads`); on torch the caller holds the model lock."""
        if hasattr(model, "session"):  # an OnnxEncoder: its threads are fixed when the session is made
            return np.asarray(model.encode(texts, batch_size=self.batch_size))
        wanted = threads or self.threads
        if wanted != self._threads_now:
            import torch  # deferred: torch is loaded with the model, on first use

            torch.set_num_threads(wanted)
            self._threads_now = wanted
        vecs = model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def _query_worker(self) -> None:
        """Encode queued queries: everything waiting at the moment the model is free, in one batch."""
        while True:
            batch = [self._queries.get()]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queries.get_nowait())
                except queue.Empty:
                    break
            try:
                model = self._runner(small=True)
                with self._model_lock:
                    vecs = self._forward(model, [text for text, _ in batch], threads=self.query_threads)
            except BaseException as exc:  # hand the failure to every caller in the batch
                for _, future in batch:
                    future.set_exception(exc)
                continue
            self.query_batches += 1
            for (_, future), vec in zip(batch, vecs, strict=True):
                future.set_result(vec)

    def _submit_query(self, text: str) -> Future[np.ndarray]:
        if self._worker is None:
            with self._waiting_lock:
                if self._worker is None:
                    self._worker = threading.Thread(
                        target=self._query_worker, name="metamedia-embed", daemon=True
                    )
                    self._worker.start()
        future: Future[np.ndarray] = Future()
        self._queries.put((text, future))
        return future

    def _encode_now(self, text: str) -> np.ndarray | None:
        """Embed in the calling thread when nothing else wants the model (no queued query, model
        free): one query alone pays no hand-over to the worker thread. None = take the queue."""
        if not self._queries.empty() or not self.onnx_available():
            return None
        model = self._runner(small=True)
        if not self._model_lock.acquire(blocking=False):
            return None
        try:
            return np.asarray(self._forward(model, [text], threads=self.query_threads)[0])
        finally:
            self._model_lock.release()

    def encode_query(self, text: str) -> np.ndarray:
        """Embed one query, served from the LRU cache when seen before."""
        with self._cache_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                self.cache_hits += 1
                return hit
        vec = self._encode_now(text)
        if vec is None:
            vec = self._submit_query(text).result()
        vec.setflags(write=False)
        with self._cache_lock:
            self.cache_misses += 1
            self._cache[text] = vec
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return vec
