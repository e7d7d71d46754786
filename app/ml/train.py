"""Training as plain functions: everything they need comes in as arguments."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable
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
    # At most about this many optimizer steps (fewer epochs on big sets, train.epochs_for); 0: no limit.
    max_steps: int = 0
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


def train_head(X: np.ndarray, y: np.ndarray, train_idx: np.ndarray, val_idx: np.ndarray,
               num_classes: int, cfg: HeadConfig, on_progress: ProgressFn | None = None,
               should_stop: StopFn | None = None) -> HeadResult:
    """Train a head on cached features; keep the epoch with the best balanced validation accuracy.

    Ties go to the higher plain accuracy, then the lower validation loss. Without a validation set the
    last epoch is kept.
    """
    return train_heads(X, y, [(train_idx, val_idx)], num_classes, cfg, on_progress, should_stop)[0]


def train_heads(X: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]], num_classes: int,
                cfg: HeadConfig, on_progress: ProgressFn | None = None,
                should_stop: StopFn | None = None, bf16: bool | None = None) -> list[HeadResult]:
    """One head per (train rows, validation rows) split of `X`, all trained at once.

    The heads' weights are stacked (F heads: F x D x H) and every step is one batched matrix product
    for all of them, each head drawing its own shuffled batch of its own training rows. Adam works
    element by element, so each head follows its own course exactly as if trained alone; what is
    shared is the Python loop and the kernel launches, which were most of the time for 5 small heads
    (bench/speed.py: 720 samples, 5 folds, 2.9 s one after another). `bf16`: the first product in
    bfloat16; None: where the CPU multiplies bfloat16 natively (native_bf16).
    """
    if not splits:
        return []
    with single_thread() if len(X) < BIG else contextlib.nullcontext():
        return _train_stacked(X, y, splits, num_classes, cfg, on_progress, should_stop, bf16)


@contextlib.contextmanager
def single_thread():
    """Matrices this small gain nothing from a thread pool, and a pool stalls badly whenever another
    process holds the cores (a 3 s head took 30-300 s under load; on one thread, 3-4 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# From this many rows on, the stacked products are big enough for the cores' thread pool to pay (720
# samples: 1.16 s on one thread, 0.75 s on two); smaller ones stay on one thread (see single_thread).
BIG = 500


def warm_up() -> None:
    """The first backward pass in a process costs about a second of one-off set-up (autograd's engine);
    the worker pays it at start, not the first retrain."""
    X = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    train_heads(X, np.arange(8) % 2, [(np.arange(6), np.arange(6, 8))], 2, HeadConfig(epochs=1, hidden=2))


def epochs_for(cfg: HeadConfig, n_train: int) -> int:
    """cfg.epochs, fewer where an epoch has many steps: past `max_steps` more passes over thousands of
    photos add time, not accuracy (cifar10-scale, 5,000 photos: 40 epochs and 10 reach the same held-out
    accuracy, bench/scale.py); never fewer than MIN_EPOCHS."""
    if not cfg.max_steps:
        return cfg.epochs
    per_epoch = max(1, math.ceil(n_train / cfg.batch_size))
    return min(cfg.epochs, max(MIN_EPOCHS, math.ceil(cfg.max_steps / per_epoch)))


MIN_EPOCHS = 8


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX). There the heads' first
    product, x (batch x 1,280) by the hidden layer's weights, two thirds of their time, runs in
    bfloat16: 720 samples, 5 heads, 0.78 s -> 0.51 s, held-out accuracy unchanged on hymenoptera and
    cifar10-mini (bench/accuracy.py). Elsewhere bfloat16 is emulated, slower than float32."""
    return any(getattr(torch.cpu, name, lambda: False)()
               for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


class StackedHeads:
    """F heads of Dense(H) + ReLU + Dropout + Dense(K) as stacked tensors."""

    def __init__(self, n: int, in_dim: int, num_classes: int, hidden: int, dropout: float, gen: torch.Generator):
        def uniform(shape, fan_in):  # nn.Linear's initialisation
            bound = 1 / math.sqrt(fan_in)
            return (torch.rand(shape, generator=gen) * 2 - 1).mul_(bound).requires_grad_()

        self.w1, self.b1 = uniform((n, in_dim, hidden), in_dim), uniform((n, 1, hidden), in_dim)
        self.w2, self.b2 = uniform((n, hidden, num_classes), hidden), uniform((n, 1, num_classes), hidden)
        self.in_dim, self.num_classes, self.hidden, self.dropout = in_dim, num_classes, hidden, dropout

    def parameters(self) -> list[torch.Tensor]:
        return [self.w1, self.b1, self.w2, self.b2]

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """x: (F, B, D) -> logits (F, B, K); `keep`: (F, B, H) dropout mask of the hidden units, scaled
        (1 / (1 - p) where kept, 0 where dropped), None when judging. x in bfloat16 runs the first, big
        product in bfloat16 (the weights stay float32, as does everything after)."""
        if x.dtype == torch.bfloat16:
            h = torch.relu(torch.baddbmm(self.b1.bfloat16(), x, self.w1.bfloat16()).float())
        else:
            h = torch.relu(torch.baddbmm(self.b1, x, self.w1))
        if keep is not None:
            h = h * keep
        return torch.baddbmm(self.b2, h, self.w2)

    def head(self, f: int, state: list[torch.Tensor]) -> Head:
        head = Head(self.in_dim, self.num_classes, self.hidden, self.dropout)
        w1, b1, w2, b2 = (t[f] for t in state)
        head.load_state_dict({"net.0.weight": w1.T.contiguous(), "net.0.bias": b1[0].clone(),
                              "net.3.weight": w2.T.contiguous(), "net.3.bias": b2[0].clone()})
        return head.eval()


def _stats(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict:
    right = (logits.argmax(1) == y).float()
    count = torch.bincount(y, minlength=num_classes)
    hits = torch.bincount(y, weights=right, minlength=num_classes)
    present = count > 0
    return {"val_loss": float(nn.functional.cross_entropy(logits, y)), "val_accuracy": float(right.mean()),
            "val_balanced_accuracy": float((hits[present] / count[present]).mean())}


def _train_stacked(X, y, splits, num_classes, cfg, on_progress, should_stop, bf16) -> list[HeadResult]:
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    # Dropout's masks, a whole epoch's in one call: numpy's generator makes them several times faster than torch's
    # bernoulli_, which was a tenth of the training time at 720 samples.
    masks = np.random.default_rng(cfg.seed)
    feats = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    if native_bf16() if bf16 is None else bf16:
        feats = feats.bfloat16()  # StackedHeads.forward: the first product in bfloat16
    labels = torch.from_numpy(np.asarray(y).astype(np.int64))
    n_heads, batch = len(splits), cfg.batch_size
    trains = [torch.from_numpy(np.asarray(tr, dtype=np.int64)) for tr, _ in splits]
    # Every head's held-out rows, padded to the longest, so that one batched product judges them all each
    # epoch (one at a time was a third of the training time at 720 samples).
    held = [torch.from_numpy(np.asarray(va, dtype=np.int64)) for _, va in splits]
    held_sizes = [len(h) for h in held]
    held_rows = torch.zeros(n_heads, max(held_sizes), dtype=torch.int64)
    for f, rows in enumerate(held):
        held_rows[f, :len(rows)] = rows
    held_x = feats.index_select(0, held_rows.reshape(-1)).view(n_heads, held_rows.shape[1], feats.shape[1])
    held_y = [labels[h] for h in held]
    sizes = torch.tensor([len(t) for t in trains])
    longest = int(sizes.max())
    epochs = epochs_for(cfg, longest)
    # Each head's loss weights its own training rows' classes (train.loss_weights).
    weights = torch.stack([loss_weights(labels[t].numpy(), num_classes, cfg.class_weights)
                           if cfg.class_weights else torch.ones(num_classes) for t in trains])
    heads = StackedHeads(n_heads, feats.shape[1], num_classes, cfg.hidden, cfg.dropout, gen)
    opt = torch.optim.Adam(heads.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay,
                           fused=True)  # one kernel for the four stacked tensors
    best_state = [p.detach().clone() for p in heads.parameters()]
    best: list[tuple | None] = [None] * n_heads
    best_epoch, histories = [epochs] * n_heads, [[] for _ in range(n_heads)]
    position = torch.arange(longest)
    for epoch in range(1, epochs + 1):
        if should_stop and should_stop():
            raise TrainingCancelled()
        # Row j of head f's epoch: its j-th shuffled training row; past its size, padding of weight 0.
        order = torch.zeros(n_heads, longest, dtype=torch.int64)
        for f, rows in enumerate(trains):
            order[f, :len(rows)] = rows[torch.randperm(len(rows), generator=gen)]
        valid = (position[None, :] < sizes[:, None]).float()
        keep = None
        if cfg.dropout:
            keep = torch.from_numpy(masks.random((n_heads, longest, cfg.hidden), dtype=np.float32) >= cfg.dropout)
            keep = keep.float().mul_(1 / (1 - cfg.dropout))
        loss_sum, correct = torch.zeros(n_heads), torch.zeros(n_heads)
        for lo in range(0, longest, batch):
            if should_stop and should_stop():  # each step: a job waiting for these heads starts at once
                raise TrainingCancelled()
            idx, mask = order[:, lo:lo + batch], valid[:, lo:lo + batch]
            xb = feats.index_select(0, idx.reshape(-1)).view(n_heads, idx.shape[1], -1)
            yb = labels[idx]
            logits = heads.forward(xb, None if keep is None else keep[:, lo:lo + batch])
            # nn.CrossEntropyLoss(weight, label_smoothing), per head: the smoothing term weighs every class
            # by its weight too, which pulls a small class's belief up on every row (test_honest_numbers).
            logp = torch.log_softmax(logits, 2)
            w_y = weights.gather(1, yb)
            nll = -logp.gather(2, yb[..., None])[..., 0]
            smooth = -(logp * weights[:, None, :]).sum(2) / num_classes
            per_row = (1 - cfg.label_smoothing) * w_y * nll + cfg.label_smoothing * smooth
            per_head = (per_row * mask).sum(1) / (w_y * mask).sum(1).clamp_min(1e-12)
            opt.zero_grad(set_to_none=True)
            per_head.sum().backward()
            opt.step()
            # Running statistics of the epoch's own batches, as training loops report them: a
            # separate pass over the training set would cost a third of the whole training.
            with torch.no_grad():
                loss_sum += per_head.detach() * mask.sum(1)
                correct += ((logits.argmax(2) == yb).float() * mask).sum(1)
        with torch.inference_mode():
            held_logits = heads.forward(held_x) if held_x.shape[1] else None
            for f in range(n_heads):
                row = {"epoch": epoch, "train_loss": float(loss_sum[f]) / int(sizes[f]),
                       "train_accuracy": float(correct[f]) / int(sizes[f])}
                if held_sizes[f]:
                    row.update(_stats(held_logits[f, :held_sizes[f]], held_y[f], num_classes))
                    if best[f] is None or epoch_key(row) > best[f]:
                        best[f], best_epoch[f] = epoch_key(row), epoch
                        for kept, p in zip(best_state, heads.parameters(), strict=True):
                            kept[f].copy_(p[f])
                histories[f].append(row)
        if on_progress:
            on_progress(epoch / epochs, f"epoch {epoch}/{epochs}")
    final = [p.detach() for p in heads.parameters()]
    seconds = time.perf_counter() - start
    return [HeadResult(heads.head(f, best_state if best[f] is not None else final), best_epoch[f], histories[f],
                       seconds) for f in range(n_heads)]


@torch.inference_mode()
def head_probabilities(head: Head, X: np.ndarray) -> np.ndarray:
    head.eval()
    return torch.softmax(head(torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))), 1).numpy()
