"""Metrics a person can read: accuracy, per-class accuracy, confusion matrix."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_report(y_true: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """Rows of the confusion matrix are true classes, columns predicted ones."""
    k = len(labels)
    if len(y_true) == 0:
        return {"accuracy": None, "count": 0, "per_class": [], "confusion": None, "loss": None}
    y_pred = probs.argmax(axis=1)
    cm = confusion_matrix(y_true, y_pred, k)
    per_class = []
    for i, label in enumerate(labels):
        n = int(cm[i].sum())
        per_class.append({"label": label, "count": n, "accuracy": (float(cm[i, i] / n) if n else None)})
    eps = 1e-7
    loss = float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], eps, 1)).mean())
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "count": int(len(y_true)),
        "per_class": per_class,
        "confusion": cm.tolist(),
        "loss": loss,
    }
