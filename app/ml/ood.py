""""None of these": how close an embedding is to what the model was trained on.

The score is the mean cosine similarity to the 5 nearest training embeddings (prototypes, up to
256 per class). Measured on hymenoptera (val in, ImageNet-sample and CIFAR out): AUROC 0.993,
against 0.983 for similarity to class centroids. The threshold is calibrated so that about 98 % of
known images pass: on held-out embeddings (each cross-validation fold's against the other folds'
prototypes, or the validation split's) plus leave-one-out scores of the prototypes, since a small
project's validation set alone gives a noisy quantile. Measured with one validation split on all of
hymenoptera/train:
2.6 % of val photos are called unknown and 6.4 % of other photos pass; with 30 photos a class,
about 10 % and 2 %: small projects get a stricter threshold, and the user can move it.
"""

from __future__ import annotations

import numpy as np

DEFAULT_ACCEPT = 0.98
NEIGHBOURS = 5
PER_CLASS = 256
HELD_OUT = 1000


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def prototypes(X: np.ndarray, y: np.ndarray, num_classes: int, seed: int = 0) -> np.ndarray:
    """(M, D) unit vectors: the training embeddings, at most PER_CLASS of each class."""
    rng = np.random.default_rng(seed)
    keep = []
    for k in range(num_classes):
        idx = np.flatnonzero(y == k)
        keep.append(rng.permutation(idx)[:PER_CLASS] if len(idx) > PER_CLASS else idx)
    return unit(X[np.sort(np.concatenate(keep))])


def _top_mean(sims: np.ndarray, k: int) -> np.ndarray:
    k = max(1, min(k, sims.shape[1]))
    return np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:].mean(1)  # the k largest, unsorted


# Rows scored per matrix product: memory stays CHUNK x prototypes (2,560 of 10 classes: 10 MB), not N x M.
CHUNK = 1024


def similarity(X: np.ndarray, protos: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    X = unit(X)
    if not len(X):
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([_top_mean(X[lo:lo + CHUNK] @ protos.T, k) for lo in range(0, len(X), CHUNK)])


def leave_one_out(protos: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Each prototype's score against the others: how a new image of a known class would score."""
    if len(protos) < 2:
        return np.zeros(len(protos))
    out = []
    for lo in range(0, len(protos), CHUNK):
        sims = protos[lo:lo + CHUNK] @ protos.T
        rows = np.arange(len(sims))
        sims[rows, lo + rows] = -np.inf
        out.append(_top_mean(sims, min(k, len(protos) - 1)))
    return np.concatenate(out)


def calibrate(scores: np.ndarray, accept: float = DEFAULT_ACCEPT) -> float:
    """The threshold that lets `accept` of these in-distribution scores through."""
    return float(np.quantile(scores, 1 - accept)) if len(scores) else 0.0


def held_out_scores(X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], num_classes: int,
                    seed: int = 0) -> np.ndarray:
    """Scores of held-out samples against prototypes of their split's training rows only: how new
    photos of known classes score, with bursts kept apart (leave-one-out alone would let a frame's
    near-identical neighbour vouch for it). At most HELD_OUT rows of each split: a 2 % quantile needs a few
    thousand scores, not all 20,000, and the cost then stays flat as a project grows."""
    rng = np.random.default_rng(seed)
    scores = [similarity(X[held if len(held) <= HELD_OUT else np.sort(rng.choice(held, HELD_OUT, replace=False))],
                         prototypes(X[train], y[train], num_classes, seed)) for train, held in splits]
    return np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)
