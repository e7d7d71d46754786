"""The two runtimes behind the Embedder interface give the same embeddings on real photos."""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.ml.backbones import get_spec
from app.ml.preprocess import prepare, to_input
from app.ml.runtime import FeatureNet, OrtEmbedder, TorchEmbedder, export_onnx
from tests.conftest import photos

# float32 both ways; the graphs differ only in operator fusion.
ATOL = 1e-4


def test_onnxruntime_and_torch_give_the_same_embeddings(tmp_path):
    spec = get_spec("efficientnet_lite0")
    net = FeatureNet(spec.load(), spec.preprocessing)
    path = tmp_path / "features.onnx"
    size = spec.preprocessing.input_size
    export_onnx(net, path, size, ["features"])
    paths = photos("hymenoptera", "val", "bees", limit=8)
    x = to_input(np.stack([prepare(Image.open(p).convert("RGB"), size) for p in paths]))
    ours, theirs = OrtEmbedder(path)(x), TorchEmbedder(net, "cpu")(x)
    assert ours.shape == theirs.shape == (8, 1280)
    assert np.abs(ours - theirs).max() < ATOL
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cos.min() > 0.99999
