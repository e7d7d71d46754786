"""Training as plain functions: everything they need comes in as arguments."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from app.ml.evaluate import class_weights
from app.ml.head import Head

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


class TrainingCancelled(Exception):
    pass


@dataclass
class HeadConfig:
    """Teachable Machine's recipe by default: Dense 100 + ReLU + Dense K, Adam 1e-3, batch 16, 50 epochs."""

    epochs: int = 50
    batch_size: int = 16
    learning_rate: float = 1e-3
    hidden: int = 100
    dropout: float = 0.0
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    # Inverse-frequency class weights in the loss: with 194 ants and 24 bees an unweighted head learns
    # that "ant" is nearly always right, and the bees are found 8 % of the time.
    class_weights: bool = True
    seed: int = 0


@dataclass
class HeadResult:
    head: Head
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def balanced_accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Mean per-class recall of the classes present in `y` (ml.evaluate's, on tensors)."""
    right = (logits.argmax(1) == y).float()
    return float(torch.stack([right[y == k].mean() for k in torch.unique(y)]).mean())


def loss_weights(y: np.ndarray | torch.Tensor, num_classes: int, on: bool) -> torch.Tensor | None:
    return torch.from_numpy(class_weights(np.asarray(y), num_classes)) if on else None


def epoch_key(row: dict) -> tuple[float, float, float]:
    """Which epoch is best: balanced validation accuracy (each class counts the same), then plain
    accuracy, then the lower loss."""
    return row.get("val_balanced_accuracy", row["val_accuracy"]), row["val_accuracy"], -row["val_loss"]


def _evaluate(head: Head, X: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module) -> dict:
    head.eval()
    with torch.inference_mode():
        logits = head(X)
        return {"val_loss": float(loss_fn(logits, y)), "val_accuracy": float((logits.argmax(1) == y).float().mean()),
                "val_balanced_accuracy": balanced_accuracy(logits, y)}


def train_head(X: np.ndarray, y: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
               num_classes: int, cfg: HeadConfig, on_progress: ProgressFn | None = None,
               should_stop: StopFn | None = None) -> HeadResult:
    """Train a head on cached features; keep the epoch with the best balanced validation accuracy.

    Ties go to the higher plain accuracy, then the lower validation loss. Without a validation set the
    last epoch is kept.
    """
    with single_thread():
        return _train_head(X, y, train_idx, val_idx, num_classes, cfg, on_progress, should_stop)


@contextmanager
def single_thread():
    """Matrices this small gain nothing from a thread pool, and a pool stalls badly whenever another
    process holds the cores (a 3 s head took 30-300 s under load; on one thread, 3-4 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_head(X, y, train_idx, val_idx, num_classes, cfg, on_progress, should_stop) -> HeadResult:
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    feats = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    labels = torch.from_numpy(y.astype(np.int64))
    Xt, yt = feats[train_idx], labels[train_idx]
    Xv, yv = feats[val_idx], labels[val_idx]
    head = Head(feats.shape[1], num_classes, cfg.hidden, cfg.dropout)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    loss_fn = nn.CrossEntropyLoss(weight=loss_weights(y[train_idx], num_classes, cfg.class_weights),
                                  label_smoothing=cfg.label_smoothing)
    eval_loss = nn.CrossEntropyLoss()
    n = len(Xt)
    best = None
    best_state, best_epoch, history = None, 0, []
    for epoch in range(1, cfg.epochs + 1):
        if should_stop and should_stop():
            raise TrainingCancelled()
        head.train()
        order = torch.randperm(n, generator=gen)
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
        for lo in range(0, n, cfg.batch_size):
            idx = order[lo:lo + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            logits = head(Xt[idx])
            loss = loss_fn(logits, yt[idx])
            loss.backward()
            opt.step()
            # Running statistics of the epoch's own batches, as training loops report them: a
            # separate pass over the training set would cost a third of the whole training.
            loss_sum += loss.detach() * len(idx)
            correct += (logits.detach().argmax(1) == yt[idx]).sum()
        row = {"epoch": epoch, "train_loss": float(loss_sum) / n, "train_accuracy": int(correct) / n}
        if len(Xv):
            row.update(_evaluate(head, Xv, yv, eval_loss))
            if best is None or epoch_key(row) > best:
                best, best_state, best_epoch = epoch_key(row), copy.deepcopy(head.state_dict()), epoch
        history.append(row)
        if on_progress:
            on_progress(epoch / cfg.epochs, f"epoch {epoch}/{cfg.epochs}")
    if best_state is not None:
        head.load_state_dict(best_state)
    else:
        best_epoch = cfg.epochs
    head.eval()
    return HeadResult(head, best_epoch, history, time.perf_counter() - start)


@torch.inference_mode()
def head_probabilities(head: Head, X: np.ndarray) -> np.ndarray:
    head.eval()
    return torch.softmax(head(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))), 1).numpy()
