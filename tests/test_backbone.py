"""The default backbone really is EfficientNet-Lite0 with its ImageNet weights and [-1, 1] input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from app.ml.backbones import _lite0_weights, get_spec, list_backbones, map_lite0_key
from app.ml.preprocess import Normalize, resize_center_crop
from tests.conftest import dataset


@pytest.fixture(scope="module")
def lite0():
    return get_spec("efficientnet_lite0").load().eval()


def test_every_packaged_key_maps_onto_timm_with_matching_shapes():
    import timm

    packaged = torch.load(_lite0_weights(), map_location="cpu", weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    mapped = {map_lite0_key(k): v for k, v in packaged.items()}
    assert set(mapped) == set(target)
    assert all(mapped[k].shape == target[k].shape for k in target)


def test_registry_lists_the_offline_default_first_and_available():
    first = list_backbones()[0]
    assert first == {"name": "efficientnet_lite0", "title": first["title"], "available": True}


def _imagenet_batch(mean, std):
    root = dataset("imagenet-sample-200")
    with open(root / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    norm = Normalize(mean, std)
    xs = []
    for row in rows:
        # The standard ImageNet evaluation: shorter side 256, center crop 224.
        img = resize_center_crop(Image.open(root / row["file"]).convert("RGB"), 256)
        img = img.crop((16, 16, 240, 240))
        xs.append(torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255)
    return norm(torch.stack(xs)), torch.tensor([int(r["class_index"]) for r in rows])


def _top1(lite0, mean, std) -> float:
    x, y = _imagenet_batch(mean, std)
    with torch.inference_mode():
        logits = lite0.imagenet_head(lite0(x))
    return float((logits.argmax(1) == y).float().mean())


def test_imagenet_top1_with_the_right_scaling_and_worse_with_imagenet_mean_std(lite0):
    spec = get_spec("efficientnet_lite0")
    assert spec.preprocessing.mean == (0.5, 0.5, 0.5) and spec.preprocessing.std == (0.5, 0.5, 0.5)
    right = _top1(lite0, spec.preprocessing.mean, spec.preprocessing.std)
    wrong = _top1(lite0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert right >= 0.85, right
    # The wrong scaling crashes nothing; it only costs accuracy. This is what we guard against.
    assert wrong < right - 0.05, (right, wrong)
