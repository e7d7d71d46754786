"""Phase two of training: unfreeze the last blocks of the backbone and train them with the head,
at a lower learning rate, on augmented images, keeping the epoch with the best validation accuracy.

Phase one (the head alone, on cached embeddings) happens first in `train.train_head`; its head is
the starting point here, so the first gradient steps do not wreck the pretrained features.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image
from torch import nn

from app.ml.augment import eval_tensor, train_transform
from app.ml.backbones import Backbone, Preprocessing
from app.ml.head import Head
from app.ml.preprocess import Normalize
from app.ml.train import ProgressFn, StopFn, TrainingCancelled, balanced_accuracy, epoch_key, loss_weights

ImageLoader = Callable[[int], Image.Image]


@dataclass
class FinetuneConfig:
    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 3e-4  # for the unfrozen blocks; the head gets head_lr_factor times more
    head_lr_factor: float = 3.0
    unfreeze: int = 2  # blocks counted from the output end
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    augment: bool = True
    class_weights: bool = True  # inverse-frequency weights in the loss, as the head's (train.HeadConfig)
    patience: int = 3  # epochs without a better validation accuracy before stopping; 0: never stop early
    seed: int = 0
    time_budget_s: float | None = None


@dataclass
class FinetuneResult:
    backbone: Backbone
    head: Head
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: str | None = None


class BestEpoch:
    """Keeps the state of the epoch with the best balanced validation accuracy (ties: train.epoch_key),
    and says when to stop: no better epoch for `patience` epochs, or the time budget."""

    def __init__(self, cfg: FinetuneConfig):
        self.cfg, self.start = cfg, time.perf_counter()
        self.key, self.state, self.epoch, self.bad = None, None, 0, 0

    def record(self, epoch: int, row: dict, snapshot: Callable[[], object]) -> str | None:
        """After an epoch: keep `snapshot()` if it is the best yet; return why to stop, or None."""
        judged = "val_accuracy" in row
        if judged:
            key = epoch_key(row)
            if self.key is None or key > self.key:
                self.key, self.epoch, self.bad, self.state = key, epoch, 0, snapshot()
            else:
                self.bad += 1
        if judged and self.cfg.patience and self.bad >= self.cfg.patience:
            return f"early stop: no better validation accuracy for {self.cfg.patience} epochs"
        elapsed = time.perf_counter() - self.start
        if self.cfg.time_budget_s and elapsed * (epoch + 1) / epoch > self.cfg.time_budget_s:
            return f"time budget of {self.cfg.time_budget_s:.0f} s reached after epoch {epoch}"
        return None


class _Net(nn.Module):
    def __init__(self, backbone: Backbone, head: Head, prep: Preprocessing):
        super().__init__()
        self.normalize, self.backbone, self.head = Normalize(prep.mean, prep.std), backbone, head

    def forward(self, x):
        return self.head(self.backbone(self.normalize(x)))


def first_unfrozen(backbone: Backbone, unfreeze: int) -> int:
    """Index of the first block that trains; asking for more blocks than there are unfreezes all."""
    return max(0, len(backbone.blocks) - max(0, unfreeze))


def trainable_parameters(backbone: Backbone, unfreeze: int) -> list[nn.Parameter]:
    for p in backbone.parameters():
        p.requires_grad_(False)
    params = []
    for block in backbone.blocks[first_unfrozen(backbone, unfreeze):]:
        for p in block.parameters():
            p.requires_grad_(True)
            params.append(p)
    return params


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[np.ndarray]:
    order = torch.randperm(n, generator=gen).numpy()
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def finetune(backbone: Backbone, head: Head, prep: Preprocessing, load: ImageLoader,
             train_ids: Sequence[int], y_train: np.ndarray, val_ids: Sequence[int], y_val: np.ndarray,
             cfg: FinetuneConfig, device: str = "cpu", on_progress: ProgressFn | None = None,
             should_stop: StopFn | None = None) -> FinetuneResult:
    """Fine-tune copies of `backbone` and `head`; the originals are left as they are."""
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    dev = torch.device(device)
    backbone, head = copy.deepcopy(backbone), copy.deepcopy(head)
    net = _Net(backbone, head, prep).to(dev, memory_format=torch.channels_last)
    # Batch norm stays in eval mode: batches of 16 give poor statistics, the pretrained ones are good.
    net.eval()
    if head.dropout:
        head.train()
    params = trainable_parameters(backbone, cfg.unfreeze)
    opt = torch.optim.AdamW([
        {"params": params, "lr": cfg.learning_rate},
        {"params": head.parameters(), "lr": cfg.learning_rate * cfg.head_lr_factor},
    ], weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(train_ids) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=max(steps, 1), pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss(weight=loss_weights(y_train, head.num_classes, cfg.class_weights),
                                  label_smoothing=cfg.label_smoothing).to(dev)
    size = prep.input_size
    augment = train_transform(size) if cfg.augment else (lambda img: eval_tensor(img, size))
    amp = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")
    yt = torch.from_numpy(np.asarray(y_train, dtype=np.int64))

    def load_train(idx: np.ndarray) -> torch.Tensor:
        if cfg.augment:
            return torch.stack([augment(load(train_ids[i])) for i in idx])
        return torch.stack([eval_tensor(load(train_ids[i]), size) for i in idx])

    val_x = torch.stack([eval_tensor(load(i), size) for i in val_ids]) if len(val_ids) else None
    yv = torch.from_numpy(np.asarray(y_val, dtype=np.int64))
    keeper, history, stopped = BestEpoch(cfg), [], None
    with ThreadPoolExecutor(1, thread_name_prefix="augment") as pool:
        for epoch in range(1, cfg.epochs + 1):
            batches = _batches(len(train_ids), cfg.batch_size, gen)
            pending = pool.submit(load_train, batches[0])
            total, correct, loss_sum = 0, 0, 0.0
            for b, idx in enumerate(batches):
                if should_stop and should_stop():
                    raise TrainingCancelled()
                x = pending.result()
                if b + 1 < len(batches):
                    pending = pool.submit(load_train, batches[b + 1])
                x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
                y = yt[idx].to(dev)
                with torch.autocast(**amp):
                    logits = net(x)
                    loss = loss_fn(logits.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += len(idx)
                correct += int((logits.argmax(1) == y).sum())
                loss_sum += float(loss.detach()) * len(idx)
                if on_progress:
                    on_progress((epoch - 1 + (b + 1) / len(batches)) / cfg.epochs,
                                f"fine-tuning: epoch {epoch}/{cfg.epochs}, batch {b + 1}/{len(batches)}")
            row = {"epoch": epoch, "train_loss": loss_sum / total, "train_accuracy": correct / total}
            if val_x is not None:
                row.update(_evaluate(net, val_x, yv, dev, amp, cfg.batch_size * 2))
            history.append(row)
            stopped = keeper.record(epoch, row, lambda: copy.deepcopy(
                {k: v.detach().cpu() for k, v in net.state_dict().items()}))
            if stopped:
                break
    best_epoch = keeper.epoch if keeper.state is not None else len(history)
    if keeper.state is not None:
        net.load_state_dict(keeper.state)
    net.cpu().eval()
    backbone.to(memory_format=torch.contiguous_format)
    for p in net.parameters():
        p.requires_grad_(False)
    return FinetuneResult(backbone, head, best_epoch, history, time.perf_counter() - start, stopped)


@torch.inference_mode()
def _evaluate(net, x, y, dev, amp, batch) -> dict:
    logits = []
    for i in range(0, len(x), batch):
        with torch.autocast(**amp):
            logits.append(net(x[i:i + batch].to(dev).contiguous(memory_format=torch.channels_last)).float().cpu())
    out = torch.cat(logits)
    return {"val_loss": float(nn.functional.cross_entropy(out, y)),
            "val_accuracy": float((out.argmax(1) == y).float().mean()),
            "val_balanced_accuracy": balanced_accuracy(out, y)}
