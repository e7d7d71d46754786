"""Metrics a person can read: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Mean of the per-class recalls over the classes present in `y_true`: a class of 24 photos counts
    as much as one of 194, so always answering the big class no longer looks like 89 %."""
    recalls = [float((y_pred[y_true == k] == k).mean()) for k in range(num_classes) if (y_true == k).any()]
    return float(np.mean(recalls)) if recalls else float("nan")


def class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency loss weights, n / (K * n_k), 1 for a class absent from `y`: each class then
    weighs the same in the loss whatever its photo count (for equal counts, all ones)."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.ones(num_classes)
    w[present] = counts[present].sum() / (present.sum() * counts[present])
    return w.astype(np.float32)


def classification_report(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """Rows of the confusion matrix are true classes, columns predicted ones."""
    k = len(labels)
    if len(y_true) == 0:
        return {"accuracy": None, "balanced_accuracy": None, "count": 0, "per_class": [], "confusion": None,
                "loss": None}
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, k)
    per_class = []
    for i, label in enumerate(labels):
        n = int(cm[i].sum())
        per_class.append({"label": label, "count": n, "accuracy": (float(cm[i, i] / n) if n else None)})
    judged = [c["accuracy"] for c in per_class if c["accuracy"] is not None]
    eps = 1e-7
    loss = float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1)).mean())
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "balanced_accuracy": float(np.mean(judged)),
        "count": int(len(y_true)),
        "per_class": per_class,
        "confusion": cm.tolist(),
        "loss": loss,
    }
