"""The validation split: per class, about 15 %, and whole groups (webcam bursts) on one side."""

from __future__ import annotations

import numpy as np

from app.ml.split import kfold_by_group, split_by_group


def test_about_fifteen_percent_of_each_class_goes_to_validation():
    y = np.array([0] * 100 + [1] * 40)
    groups = [f"s{i}" for i in range(len(y))]
    train, val = split_by_group(y, groups, 0.15, seed=1)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(140))
    assert (y[val] == 0).sum() == 15 and (y[val] == 1).sum() == 6


def test_bursts_never_straddle_train_and_validation():
    rng = np.random.default_rng(0)
    y, groups = [], []
    for cls in range(3):
        for burst in range(8):
            n = int(rng.integers(3, 25))
            y += [cls] * n
            groups += [f"c{cls}-b{burst}"] * n
        for single in range(5):  # uploaded files are groups of one
            y.append(cls)
            groups.append(f"c{cls}-file{single}")
    y = np.array(y)
    for seed in range(20):
        train, val = split_by_group(y, groups, 0.15, seed=seed)
        train_groups = {groups[i] for i in train}
        val_groups = {groups[i] for i in val}
        assert not train_groups & val_groups
        for cls in range(3):
            assert (y[train] == cls).any() and (y[val] == cls).any()


def test_a_class_of_one_group_stays_in_training():
    y = np.array([0] * 30 + [1] * 10)
    groups = ["burst-a"] * 30 + [f"f{i}" for i in range(10)]
    train, val = split_by_group(y, groups, 0.15)
    assert (y[val] == 0).sum() == 0 and (y[train] == 0).sum() == 30


def test_tiny_classes_keep_their_only_images_for_training():
    y = np.array([0, 1, 1])
    train, val = split_by_group(y, ["a", "b", "c"], 0.15)
    assert train.tolist() == [0, 1, 2] and val.tolist() == []


def _bursty_labels(seed: int = 0):
    rng = np.random.default_rng(seed)
    y, groups = [], []
    for cls in range(3):
        for burst in range(6):
            n = int(rng.integers(3, 20))
            y += [cls] * n
            groups += [f"c{cls}-b{burst}"] * n
        for single in range(7):
            y.append(cls)
            groups.append(f"c{cls}-file{single}")
    return np.array(y), groups


def test_kfold_holds_every_photo_out_once_with_bursts_whole():
    y, groups = _bursty_labels()
    for seed in range(10):
        folds = kfold_by_group(y, groups, 5, seed=seed)
        assert (folds >= 0).all() and set(folds.tolist()) == set(range(5))
        for g in set(groups):
            assert len({int(folds[i]) for i in range(len(y)) if groups[i] == g}) == 1
        for cls in range(3):
            # Every fold's training side keeps the class; no fold takes far more than its share.
            sizes = np.bincount(folds[y == cls], minlength=5)
            assert sizes.max() < (y == cls).sum() and sizes.max() - sizes.min() <= 19


def test_kfold_never_holds_out_a_class_of_one_group():
    y = np.array([0] * 30 + [1] * 2 + [2] * 10)
    groups = ["burst"] * 30 + ["f1", "f2"] + [f"g{i}" for i in range(10)]
    folds = kfold_by_group(y, groups, 5, seed=3)
    assert (folds[y == 0] == -1).all()
    assert len(set(folds[y == 1].tolist())) == 2 and (folds[y == 1] >= 0).all()  # two photos, two folds
    assert sorted(np.bincount(folds[y == 2], minlength=5).tolist()) == [2, 2, 2, 2, 2]
