""""None of these": how close an embedding is to what the model was trained on.

The score is the cosine similarity to the nearest class centroid of the training embeddings. The
threshold is calibrated on the validation embeddings so that about 95 % of real images of the
known classes pass; below it the answer is "unknown" instead of a forced class.
"""

from __future__ import annotations

import numpy as np

DEFAULT_ACCEPT = 0.95


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def class_centroids(X: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, D) unit vectors: the mean direction of each class's training embeddings."""
    unit = _unit(np.asarray(X, dtype=np.float32))
    return _unit(np.stack([unit[y == k].mean(0) for k in range(num_classes)])).astype(np.float32)


def similarity(X: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return (_unit(np.asarray(X, dtype=np.float32)) @ centroids.T).max(1)


def calibrate(scores: np.ndarray, accept: float = DEFAULT_ACCEPT) -> float:
    """The threshold that lets `accept` of these in-distribution scores through."""
    return float(np.quantile(scores, 1 - accept)) if len(scores) else 0.0
