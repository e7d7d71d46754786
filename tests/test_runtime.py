"""The two runtimes behind the Embedder interface give the same embeddings on real photos."""

from __future__ import annotations

import sqlite3

import numpy as np
from PIL import Image

from app.ml.backbones import get_spec
from app.ml.preprocess import prepare
from app.ml.runtime import ORT_CHUNK, FeatureNet, OrtEmbedder, TorchEmbedder, export_onnx
from app.storage import input_kind
from tests.conftest import photos

# float32 both ways; the graphs differ only in operator fusion.
ATOL = 1e-4


def test_onnxruntime_and_torch_give_the_same_embeddings(tmp_path):
    spec = get_spec("efficientnet_lite0")
    net = FeatureNet(spec.load(), spec.preprocessing)
    path = tmp_path / "features.onnx"
    size = spec.preprocessing.input_size
    export_onnx(net, path, size, ["features"])
    paths = photos("hymenoptera", "val", "bees", limit=ORT_CHUNK * 2 + 1)  # chunks of 4, 4 and 1 in ORT
    x = np.stack([prepare(Image.open(p).convert("RGB"), size) for p in paths])
    ours, theirs = OrtEmbedder(path)(x), TorchEmbedder(net, "cpu")(x)
    assert ours.shape == theirs.shape == (len(paths), 1280)
    assert np.abs(ours - theirs).max() < ATOL
    cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    assert cos.min() > 0.99999


def test_the_gpu_code_path_runs_on_the_cpu_and_agrees_with_onnxruntime(tmp_path, cache_dir):
    """No GPU here: worker_runtime=torch runs the worker's CUDA path (PyTorch, channels-last) on the CPU."""
    from fastapi.testclient import TestClient

    from app.config import Settings
    from app.main import create_app
    from tests.conftest import make_project, train, upload

    settings = Settings(data_dir=tmp_path / "data", cache_path=cache_dir, worker_runtime="torch")
    with TestClient(create_app(settings)) as client:
        pid, (a, b) = make_project(client, classes=("ants", "bees"))
        upload(client, a, photos("hymenoptera", "train", "ants", limit=6))
        upload(client, b, photos("hymenoptera", "train", "bees", limit=6))
        job = train(client, pid, epochs=3)
        assert job["status"] == "succeeded" and job["metrics"]["extract_runtime"] == "torch"
        # Extraction ran in PyTorch; prediction runs in ONNX Runtime: the same embeddings either way.
        services = client.app.state.services
        with sqlite3.connect(settings.data_dir / "snapclass.db") as conn:
            rows = conn.execute("SELECT s.key, e.vector FROM embeddings e JOIN samples s ON s.id = e.sample_id "
                                "LIMIT 4").fetchall()
        size = get_spec("efficientnet_lite0").preprocessing.input_size
        # The pixels extraction read: the crop stored at upload.
        pixels = np.stack([np.load(services.store.path(key, input_kind(size))) for key, _ in rows])
        by_ort = services.embedders.cpu("efficientnet_lite0")(pixels)
        by_torch = np.stack([np.frombuffer(vec, dtype="<f4") for _, vec in rows])
        assert np.abs(by_ort - by_torch).max() < ATOL
        job = train(client, pid, mode="finetune", epochs=2, finetune_epochs=1, unfreeze=1)
        assert job["status"] == "succeeded" and job["metrics"]["mode"] == "finetune"
        assert job["metrics"]["finetune_engine"] == "online"  # the GPU's way: whole forward passes
