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


def kfold_by_group(labels: np.ndarray, groups: list[str], k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold number (0..k-1) of every sample for cross-validation, or -1 for "always in training".

    Per class, whole groups are dealt to the folds with the fewest of that class's samples so far,
    so each fold holds about 1/k of every class and a burst never straddles folds. A class with a
    single group is never held out: its fold's model would not know the class at all.
    """
    rng = np.random.default_rng(seed)
    folds = np.full(len(labels), -1, dtype=np.int64)
    for cls in np.unique(labels):
        by_group: dict[str, list[int]] = defaultdict(list)
        for i in np.flatnonzero(labels == cls):
            by_group[groups[i]].append(int(i))
        if len(by_group) < 2:
            continue
        names = sorted(by_group)
        rng.shuffle(names)
        names.sort(key=lambda g: -len(by_group[g]))  # big groups first, then the shuffled order
        filled = np.zeros(k)
        offset = int(rng.integers(k))  # so that small classes do not all start at fold 0
        for name in names:
            fold = min(range(k), key=lambda f: (filled[(f + offset) % k], f))
            fold = (fold + offset) % k
            folds[by_group[name]] = fold
            filled[fold] += len(by_group[name])
    return folds
