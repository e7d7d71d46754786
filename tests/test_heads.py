"""The stacked heads on real embeddings: bfloat16's first product learns what float32 does, and a stop
request is seen within a step, not an epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.ml.backbones import get_spec
from app.ml.crossval import train_cross_validated
from app.ml.preprocess import prepare
from app.ml.runtime import FeatureNet, TorchEmbedder
from app.ml.split import kfold_by_group
from app.ml.train import TrainingCancelled, head_probabilities, native_bf16, train_heads
from app.training import head_config
from tests.conftest import photos


@pytest.fixture(scope="module")
def embedded() -> dict[str, np.ndarray]:
    """Lite0 embeddings of 40 ants and 40 bees to train on, 30 of each held out."""
    spec = get_spec("efficientnet_lite0")
    net = TorchEmbedder(FeatureNet(spec.load(), spec.preprocessing), "cpu")
    size = spec.preprocessing.input_size

    def embed(paths):
        with torch.inference_mode():
            return net(np.stack([prepare(Image.open(p).convert("RGB"), size) for p in paths]))

    out = {}
    for split, n in (("train", 40), ("val", 30)):
        paths = photos("hymenoptera", split, "ants", limit=n) + photos("hymenoptera", split, "bees", limit=n)
        out[split] = embed(paths)
        out[f"y_{split}"] = np.repeat([0, 1], n)
    return out


def test_bfloat16_products_learn_what_float32_does(embedded):
    X, y = embedded["train"], embedded["y_train"]
    folds = kfold_by_group(y, [str(i) for i in range(len(y))], 5, 0)
    cfg = head_config({}, "snapclass")
    probs, accs = {}, {}
    for bf16 in (False, True):
        results = train_heads(X, y, [(np.flatnonzero(folds != f), np.flatnonzero(folds == f))
                                     for f in range(5)], 2, cfg, bf16=bf16)
        p = np.mean([head_probabilities(r.head, embedded["val"]) for r in results], axis=0)
        probs[bf16], accs[bf16] = p, float((p.argmax(1) == embedded["y_val"]).mean())
    assert min(accs.values()) >= 0.85, accs  # ants and bees are easy for Lite0: ~0.95 on hymenoptera/val
    assert abs(accs[True] - accs[False]) <= 0.05, accs
    # Same seed, same batches and masks: the two courses stay close, photo by photo.
    assert np.abs(probs[True] - probs[False]).mean() < 0.05
    # The default follows the hardware: where this CPU multiplies bfloat16 natively, the same heads as bf16=True.
    default = train_cross_validated(X, y, folds, 2, cfg)
    same = np.allclose(head_probabilities(default.head, embedded["val"]), probs[native_bf16()], atol=1e-5)
    assert same


def test_a_stop_request_is_seen_within_a_step(embedded):
    X, y = embedded["train"], embedded["y_train"]
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3  # a job arrives during the first epoch's third step

    cfg = head_config({}, "snapclass")
    cfg.batch_size = 8  # 10 steps an epoch on 80 rows
    with pytest.raises(TrainingCancelled):
        train_heads(X, y, [(np.arange(len(y)), np.arange(0))], 2, cfg, should_stop=stop)
    assert len(asked) == 4  # checked at the epoch's start and before each step; not one step more
