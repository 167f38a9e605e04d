"""Seeded clustered vectors for tests and benchmarks.

Uniform random vectors have no neighbour structure (every point is about equally far from every
other), which makes ANN recall meaningless. Real embeddings form clusters of varying shape, so
this draws points around `clusters` Gaussian centres, each with its own per-dimension spread
(anisotropic), and normalises them onto the unit sphere.
"""

from __future__ import annotations

import numpy as np


class ClusteredDataset:
    """A fixed mixture of anisotropic Gaussian clusters; `sample` draws points from it."""

    def __init__(self, dim: int, clusters: int = 1000, *, seed: int = 0, spread: float = 0.35) -> None:
        rng = np.random.default_rng(seed)
        self.dim = dim
        self.centres = rng.standard_normal((clusters, dim)).astype(np.float32)
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)
        # Per-cluster, per-dimension standard deviations: elongated clusters of different sizes.
        self.scales = (rng.uniform(0.2, 1.0, (clusters, dim)) * spread / np.sqrt(dim)).astype(np.float32)
        self.weights = rng.dirichlet(np.full(clusters, 2.0))

    def sample(self, n: int, *, seed: int, normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(vectors float32 (n, dim), cluster of each vector), drawn in chunks to bound memory."""
        rng = np.random.default_rng(seed)
        labels = rng.choice(len(self.centres), size=n, p=self.weights)
        out = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, 50_000):
            part = labels[start : start + 50_000]
            noise = rng.standard_normal((len(part), self.dim), dtype=np.float32)
            block = self.centres[part] + noise * self.scales[part]
            if normalise:
                block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[start : start + len(part)] = block
        return out, labels


def clustered(n: int, dim: int, *, clusters: int = 100, seed: int = 0) -> np.ndarray:
    """`n` normalised clustered vectors (shortcut for tests)."""
    return ClusteredDataset(dim, clusters, seed=seed).sample(n, seed=seed + 1)[0]
