"""Validation split: per class, by group, so near-identical frames never straddle train and val."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def split_by_group(labels: np.ndarray, groups: list[str], val_fraction: float = 0.15,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return (train_idx, val_idx).

    Within each class, whole groups (a webcam burst, or one uploaded file) go to validation until
    about `val_fraction` of the class's samples are there; at least one group always stays in train.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        by_group: dict[str, list[int]] = defaultdict(list)
        for i in members:
            by_group[groups[i]].append(int(i))
        names = sorted(by_group)
        rng.shuffle(names)
        target = int(np.floor(val_fraction * len(members) + 0.5))
        taken = 0
        for pos, name in enumerate(names):
            size = len(by_group[name])
            is_last = pos == len(names) - 1
            # Stop before overshooting by more than half a group, and never empty the train side.
            if taken >= target or is_last or taken + size - target > size / 2 and taken > 0:
                train.extend(by_group[name])
            else:
                val.extend(by_group[name])
                taken += size
    return np.array(sorted(train), dtype=np.int64), np.array(sorted(val), dtype=np.int64)
