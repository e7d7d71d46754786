"""Issue 4, item 2: what raises accuracy on the frozen backbone, each measured alone.

Every recipe gets the same Lite0 embeddings (computed once here with the app's own ONNX graph,
preprocessing and augmented views), and each runs over several seeds (other validation splits or
folds, other initialisations): on 153 photos one photo is 0.65 points, so a single run cannot tell
recipes apart. The end-to-end table, through the HTTP API, is bench/accuracy.py.

    .venv/bin/python -m bench.cheap_gains [--seeds 5] [--datasets hymenoptera,cifar10-mini]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from app.images import fit_shorter_side
from app.ml.augment import augmented_view
from app.ml.backbones import get_spec
from app.ml.crossval import train_cross_validated
from app.ml.features import iter_embeddings
from app.ml.preprocess import prepare
from app.ml.runtime import FeatureNet, OrtEmbedder, export_onnx
from app.ml.split import kfold_by_group, split_by_group
from app.ml.train import HeadConfig, head_probabilities, train_head
from app.training import head_config
from bench.common import DATASETS, machine

SPLITS = {"hymenoptera": ("train", "val"), "cifar10-mini": ("train", "test")}
VIEWS = 3
WORK_SIDE = 352  # the server's working copy of an upload (config.work_image_side)


def embeddings(embedder, dataset: str, split: str, views: int, size: int) -> tuple[list[np.ndarray], np.ndarray]:
    root = DATASETS / dataset / split
    files = [(f, k) for k, c in enumerate(sorted(p.name for p in root.iterdir())) for f in sorted((root / c).iterdir())]
    images = [fit_shorter_side(Image.open(f).convert("RGB"), WORK_SIDE) for f, _ in files]
    out = []
    for view in range(views + 1):
        def pixels(i: int, view: int = view) -> np.ndarray:
            return prepare(images[i], size) if view == 0 else augmented_view(images[i], size, view, i)

        out.append(np.concatenate([f for _, f in iter_embeddings(list(range(len(images))), pixels, embedder)]))
    return out, np.array([k for _, k in files])


def one_head(train: list[np.ndarray], y: np.ndarray, cfg: HeadConfig, views: int) -> object:
    """One head on a 15 % validation split, with `views` augmented views of the training rows."""
    tr, va = split_by_group(y, [str(i) for i in range(len(y))], 0.15, cfg.seed)
    X = np.concatenate([v[tr] for v in train[:views + 1]] + [train[0][va]])
    Y = np.concatenate([y[tr]] * (views + 1) + [y[va]])
    n = len(tr) * (views + 1)
    return train_head(X, Y, np.arange(n), np.arange(n, len(X)), int(y.max()) + 1, cfg).head


def cross_validated(train: list[np.ndarray], y: np.ndarray, cfg: HeadConfig, views: int) -> object:
    folds = kfold_by_group(y, [str(i) for i in range(len(y))], 5, cfg.seed)
    return train_cross_validated(train[0], y, folds, int(y.max()) + 1, cfg, train[1:views + 1]).head


TTA = None  # marks the row that re-judges the previous row's heads with test-time augmentation
RECIPES = [
    ("Teachable-Machine recipe (Dense 100, Adam 1e-3, batch 16, 50 epochs)",
     lambda tr, y, s: one_head(tr, y, HeadConfig(seed=s), 0)),
    ("snapclass head on one 15 % split (hidden 64, dropout 0.3, label smoothing 0.1, batch 128)",
     lambda tr, y, s: one_head(tr, y, head_config({"seed": s}, "snapclass"), 0)),
    ("  + mirrored test photo averaged in (test-time augmentation)", TTA),
    (f"  + {VIEWS} augmented views per training photo",
     lambda tr, y, s: one_head(tr, y, head_config({"seed": s}, "snapclass"), VIEWS)),
    ("snapclass cross-validated heads (5 folds, answering together; the default)",
     lambda tr, y, s: cross_validated(tr, y, head_config({"seed": s}, "snapclass"), 0)),
    (f"  + {VIEWS} augmented views per training photo",
     lambda tr, y, s: cross_validated(tr, y, head_config({"seed": s}, "snapclass"), VIEWS)),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", default="hymenoptera,cifar10-mini")
    args = parser.parse_args()
    spec = get_spec("efficientnet_lite0")
    size = spec.preprocessing.input_size
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lite0.onnx"
        export_onnx(FeatureNet(spec.load().eval(), spec.preprocessing), path, size, ["features"])
        embedder = OrtEmbedder(path)
        results = {}
        for dataset in args.datasets.split(","):
            train_split, test_split = SPLITS[dataset]
            start = time.perf_counter()
            train, y = embeddings(embedder, dataset, train_split, VIEWS, size)
            test, yt = embeddings(embedder, dataset, test_split, 1, size)  # plain and mirrored
            print(f"{dataset}: embeddings in {time.perf_counter() - start:.0f} s", flush=True)
            heads = []
            for row, (name, recipe) in enumerate(RECIPES):
                accs = []
                if recipe is TTA:
                    for head in heads:
                        probs = (head_probabilities(head, test[0]) + head_probabilities(head, test[1])) / 2
                        accs.append(float((probs.argmax(1) == yt).mean()))
                else:
                    heads = [recipe(train, y, seed) for seed in range(args.seeds)]
                    accs = [float((head_probabilities(h, test[0]).argmax(1) == yt).mean()) for h in heads]
                results[(dataset, row)] = accs
                print(f"  {name}: {np.mean(accs):.3f} ({min(accs):.3f}-{max(accs):.3f})", flush=True)
    print(f"\nmachine: {machine()}; {args.seeds} seeds per cell, mean (min-max) held-out accuracy")
    datasets = args.datasets.split(",")
    print("| recipe on frozen Lite0 embeddings | " + " | ".join(datasets) + " |")
    print("|---|" + "---|" * len(datasets))
    for row, (name, _) in enumerate(RECIPES):
        cells = [results[(d, row)] for d in datasets]
        print(f"| {name.strip()} | " + " | ".join(f"{np.mean(a):.3f} ({min(a):.3f}-{max(a):.3f})" for a in cells)
              + " |")


if __name__ == "__main__":
    main()
