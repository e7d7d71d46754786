"""The default backbone really is EfficientNet-Lite0 with its ImageNet weights and [-1, 1] input."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from app.ml.backbones import _lite0_weights, get_spec, list_backbones, map_lite0_key
from app.ml.finetune_cached import Front, Tail
from app.ml.preprocess import Normalize, prepare, resize_center_crop
from app.ml.runtime import FeatureNet
from tests.conftest import dataset

RIGHT = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.fixture(scope="module")
def lite0():
    return get_spec("efficientnet_lite0").load().eval()


@pytest.fixture(scope="module")
def imagenet_sample():
    root = dataset("imagenet-sample-200")
    with open(root / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    images = [Image.open(root / row["file"]).convert("RGB") for row in rows]
    return images, torch.tensor([int(r["class_index"]) for r in rows])


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


def _top1(lite0, pixels: list[np.ndarray], labels, mean_std) -> float:
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        logits = lite0.imagenet_head(lite0(Normalize(*mean_std)(x)))
    return float((logits.argmax(1) == labels).float().mean())


def test_imagenet_top1_with_the_right_scaling_and_worse_with_imagenet_mean_std(lite0, imagenet_sample):
    images, labels = imagenet_sample
    spec = get_spec("efficientnet_lite0")
    assert (spec.preprocessing.mean, spec.preprocessing.std) == RIGHT
    # The standard ImageNet evaluation: shorter side 256, center crop 224.
    pixels = [np.asarray(resize_center_crop(img, 256).crop((16, 16, 240, 240))) for img in images]
    right = _top1(lite0, pixels, labels, RIGHT)
    wrong = _top1(lite0, pixels, labels, IMAGENET_MEAN_STD)
    assert right >= 0.85, right
    # The wrong scaling crashes nothing; it only costs accuracy. This is what we guard against.
    assert wrong < right - 0.05, (right, wrong)


def test_imagenet_top1_through_snapclass_own_preprocessing(lite0, imagenet_sample):
    """What the server and the downloads actually feed the network: full view at input_size."""
    images, labels = imagenet_sample
    size = get_spec("efficientnet_lite0").preprocessing.input_size
    assert _top1(lite0, [prepare(img, size) for img in images], labels, RIGHT) >= 0.88


def test_torchvision_backbones_appear_only_when_their_weights_lie_on_disk(tmp_path, client):
    """Nothing is downloaded: a backbone is offered once its file sits in torch's hub cache."""
    import torchvision

    spec = get_spec("resnet50")
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        assert not spec.available
        r = client.post("/api/projects", json={"name": "r", "backbone": "resnet50"})
        assert r.status_code == 422 and "no weights" in r.json()["detail"]
        path = spec.weights_path()
        path.parent.mkdir(parents=True)
        # Random weights in the real file layout: what is tested is the loading code, not the accuracy.
        torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
        assert spec.available
        net = spec.load().eval()
        with torch.inference_mode():
            assert net(torch.zeros(1, 3, 64, 64)).shape == (1, spec.feature_dim)
        assert_front_then_tail_is_the_backbone(net, spec.preprocessing, 64)
        assert client.post("/api/projects", json={"name": "r", "backbone": "resnet50"}).status_code == 201
    finally:
        torch.hub.set_dir(before)


def assert_front_then_tail_is_the_backbone(net, prep, size):
    """Fine-tuning on the CPU trains the tail on the front's cached output: the two must compose to
    exactly the network that predicts, at every depth."""
    pixels = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8))
    with torch.inference_mode():
        whole = FeatureNet(net, prep)(pixels)
        for unfreeze in range(1, len(net.blocks) + 3):  # more than there are: all of them
            composed = Tail(net, unfreeze)(Front(net, prep, unfreeze)(pixels))
            assert torch.allclose(composed, whole, atol=1e-4), unfreeze


def test_lite0_front_then_tail_is_the_backbone(lite0):
    spec = get_spec("efficientnet_lite0")
    assert len(lite0.blocks) == 9  # stem, 7 stages, head convolution
    assert_front_then_tail_is_the_backbone(lite0, spec.preprocessing, spec.preprocessing.input_size)
