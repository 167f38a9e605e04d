"""Benchmark datasets: the seeded clustered generator (see metamedia.vectors.synthetic) or a catalog."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from metamedia.vectors.synthetic import ClusteredDataset

CLUSTERS = 1000


def clustered_base_and_queries(
    n: int, dim: int, n_queries: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`n` base vectors and `n_queries` held-out queries from 1000 anisotropic Gaussian clusters."""
    dataset = ClusteredDataset(dim, CLUSTERS, seed=seed)
    base, _ = dataset.sample(n, seed=seed + 1)
    queries, _ = dataset.sample(n_queries, seed=seed + 2)
    return base, queries


def catalog_base_and_queries(path: Path, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Real embeddings from a .npy file: a random held-out subset serves as queries."""
    vectors = np.load(path).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    order = np.random.default_rng(seed).permutation(len(vectors))
    return np.ascontiguousarray(vectors[order[n_queries:]]), np.ascontiguousarray(vectors[order[:n_queries]])


def exact_top_k(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ground truth by brute force (inner product on normalised vectors = cosine)."""
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    return index.search(queries, k)[1]
