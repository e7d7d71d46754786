"""Fine-tuning on a CPU: the frozen front of the network runs once per image and augmented view, and
only the unfrozen last blocks train, epoch after epoch, on its cached output.

Fine-tuning the usual way runs the whole network forward for every image in every epoch, though
only the last blocks learn: on this project's 2-core CPU, 8 epochs of cifar10-mini took 875 s and
gained nothing. Here the front (about 90 % of Lite0's work) runs once, through ONNX Runtime, for the
plain crop and a few fixed augmented views of each image; each epoch then shows every training image
as one of its views, drawn at random. Measured on cifar10-mini (32 px photos, far from ImageNet's):
0.736 -> 0.770 for 12 epochs in 91 s of training. Online augmentation is richer, so a GPU, where
whole forward passes are cheap, fine-tunes the usual way (finetune.py).
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
from torch import nn

from app.ml.backbones import Backbone, Preprocessing
from app.ml.finetune import BestEpoch, FinetuneConfig, FinetuneResult, first_unfrozen, trainable_parameters
from app.ml.head import Head
from app.ml.preprocess import Normalize
from app.ml.train import ProgressFn, StopFn, TrainingCancelled, balanced_accuracy, loss_weights

# Augmented views per training image whose front activations are cached, besides the plain crop.
VIEWS = 4


class Front(nn.Module):
    """uint8 RGB (N, S, S, 3) in, the activations entering the last `unfreeze` blocks out."""

    def __init__(self, backbone: Backbone, prep: Preprocessing, unfreeze: int):
        super().__init__()
        self.normalize = Normalize(prep.mean, prep.std)
        self.blocks = nn.Sequential(*backbone.blocks[:first_unfrozen(backbone, unfreeze)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.normalize(x.permute(0, 3, 1, 2).float() * (1 / 255)))

    def example(self, size: int) -> torch.Tensor:
        return torch.zeros(1, size, size, 3, dtype=torch.uint8)


class Tail(nn.Module):
    """The last `unfreeze` blocks and the global average pool: Front then Tail is the backbone."""

    def __init__(self, backbone: Backbone, unfreeze: int):
        super().__init__()
        self.blocks = nn.Sequential(*backbone.blocks[first_unfrozen(backbone, unfreeze):])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x).mean((2, 3))


def tail_features(tail: Tail, acts: np.ndarray | torch.Tensor, batch: int = 128) -> np.ndarray:
    tail.eval()
    acts = torch.as_tensor(acts)
    with torch.inference_mode():
        return torch.cat([tail(acts[i:i + batch].float().contiguous(memory_format=torch.channels_last))
                          for i in range(0, len(acts), batch)]).numpy()


def finetune_cached(backbone: Backbone, head: Head, plain: np.ndarray, views: np.ndarray, y: np.ndarray,
                    train_idx: np.ndarray, val_idx: np.ndarray, cfg: FinetuneConfig,
                    on_progress: ProgressFn | None = None, should_stop: StopFn | None = None
                    ) -> tuple[FinetuneResult, np.ndarray]:
    """Fine-tune copies of the backbone's last `cfg.unfreeze` blocks and of `head`.

    `plain` holds every sample's front activations (N, C, H, W), `views` those of the augmented views
    of the training rows (V, len(train_idx), C, H, W). Returns the result (the whole backbone, with
    the trained blocks in it) and the fine-tuned embeddings of all N samples.
    """
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    backbone, head = copy.deepcopy(backbone), copy.deepcopy(head)
    params = trainable_parameters(backbone, cfg.unfreeze)
    tail = Tail(backbone, cfg.unfreeze).to(memory_format=torch.channels_last)
    tail.eval()  # batch norm keeps its pretrained statistics (batches of 32 would give poor ones)
    head.train()
    opt = torch.optim.AdamW([{"params": params, "lr": cfg.learning_rate},
                             {"params": head.parameters(), "lr": cfg.learning_rate * cfg.head_lr_factor}],
                            weight_decay=cfg.weight_decay)
    steps = cfg.epochs * math.ceil(len(train_idx) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                total_steps=max(steps, 1), pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss(weight=loss_weights(y[train_idx], head.num_classes, cfg.class_weights),
                                  label_smoothing=cfg.label_smoothing)
    # (V + 1, n_train, C, H, W): view 0 is the plain crop.
    train_acts = torch.cat([torch.from_numpy(plain[train_idx])[None], torch.from_numpy(views)])
    n_views = len(train_acts) if cfg.augment else 1
    y_train = torch.from_numpy(np.asarray(y[train_idx], dtype=np.int64))
    y_val = torch.from_numpy(np.asarray(y[val_idx], dtype=np.int64))
    val_acts = plain[val_idx]
    keeper, history, stopped = BestEpoch(cfg), [], None
    for epoch in range(1, cfg.epochs + 1):
        order = torch.randperm(len(train_idx), generator=gen)
        view = torch.randint(0, n_views, (len(train_idx),), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for lo in range(0, len(order), cfg.batch_size):
            if should_stop and should_stop():
                raise TrainingCancelled()
            rows = order[lo:lo + cfg.batch_size]
            x = train_acts[view[rows], rows].float().contiguous(memory_format=torch.channels_last)
            logits = head(tail(x))
            loss = loss_fn(logits, y_train[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += len(rows)
            correct += int((logits.detach().argmax(1) == y_train[rows]).sum())
            loss_sum += float(loss.detach()) * len(rows)
            if on_progress:
                on_progress((epoch - 1 + total / len(order)) / cfg.epochs,
                            f"fine-tuning: epoch {epoch}/{cfg.epochs}")
        row = {"epoch": epoch, "train_loss": loss_sum / total, "train_accuracy": correct / total}
        if len(val_idx):
            head.eval()
            with torch.inference_mode():
                logits = head(torch.from_numpy(tail_features(tail, val_acts)))
            head.train()
            val_loss = float(nn.functional.cross_entropy(logits, y_val))
            val_acc = float((logits.argmax(1) == y_val).float().mean())
            row.update(val_loss=val_loss, val_accuracy=val_acc, val_balanced_accuracy=balanced_accuracy(logits, y_val))
        history.append(row)
        stopped = keeper.record(epoch, row, lambda: copy.deepcopy((tail.state_dict(), head.state_dict())))
        if stopped:
            break
    best_epoch = keeper.epoch if keeper.state is not None else len(history)
    if keeper.state is not None:
        tail.load_state_dict(keeper.state[0])
        head.load_state_dict(keeper.state[1])
    head.eval()
    for p in params:
        p.requires_grad_(False)
    backbone.to(memory_format=torch.contiguous_format).eval()
    embeddings = tail_features(tail, plain)
    return FinetuneResult(backbone, head, best_epoch, history, time.perf_counter() - start, stopped), embeddings
