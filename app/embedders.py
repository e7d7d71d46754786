"""The backbones and embedders this process has loaded, shared by the worker and prediction."""

from __future__ import annotations

import threading
from pathlib import Path

from app.ml.backbones import Backbone, get_spec
from app.ml.runtime import Embedder, FeatureNet, OrtEmbedder, TorchEmbedder, export_onnx, onnx_available


class EmbedderPool:
    """Lazily builds, then keeps, one pretrained backbone and one embedder per backbone name.

    Prediction always runs on the CPU embedder (ONNX Runtime) so it never touches the GPU, which
    belongs to the worker thread; the worker asks for `for_worker`, on its device.
    """

    def __init__(self, cache_dir: Path, device: str):
        self.cache_dir, self.device = cache_dir, device
        self._lock = threading.Lock()
        self._backbones: dict[str, Backbone] = {}
        self._cpu: dict[str, Embedder] = {}
        self._device: dict[str, Embedder] = {}

    def backbone(self, name: str) -> Backbone:
        """The pretrained torch module on the CPU. Callers that change weights must copy it."""
        with self._lock:
            if name not in self._backbones:
                self._backbones[name] = get_spec(name).load().eval()
            return self._backbones[name]

    def onnx_path(self, name: str) -> Path:
        return self.cache_dir / "backbones" / f"{name}-{get_spec(name).feature_version}.onnx"

    def cpu(self, name: str) -> Embedder:
        with self._lock:
            if name in self._cpu:
                return self._cpu[name]
        backbone = self.backbone(name)
        spec = get_spec(name)
        with self._lock:
            if name not in self._cpu:
                if onnx_available():
                    path = self.onnx_path(name)
                    if not path.is_file():
                        export_onnx(FeatureNet(backbone, spec.preprocessing), path,
                                    spec.preprocessing.input_size, ["features"])
                    self._cpu[name] = OrtEmbedder(path)
                else:
                    self._cpu[name] = TorchEmbedder(FeatureNet(backbone, spec.preprocessing), "cpu")
            return self._cpu[name]

    def for_worker(self, name: str) -> Embedder:
        if not self.device.startswith("cuda"):
            return self.cpu(name)
        with self._lock:
            if name not in self._device:
                import copy

                spec = get_spec(name)
                net = FeatureNet(copy.deepcopy(self._backbones.get(name) or spec.load()), spec.preprocessing)
                self._device[name] = TorchEmbedder(net, self.device)
            return self._device[name]
