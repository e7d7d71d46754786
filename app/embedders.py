"""The backbones and embedders this process has loaded, shared by the worker and prediction.

A features key names the network behind an embedding: a registry name ("efficientnet_lite0") for
the pretrained backbone, or "name@digest" for a fine-tuned one whose weights are in the database.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from pathlib import Path

from app.ml.backbones import Backbone, BackboneSpec, get_spec
from app.ml.finetune_cached import Front
from app.ml.runtime import Embedder, FeatureNet, OrtEmbedder, TorchEmbedder, export_onnx, onnx_available

StateLoader = Callable[[str], dict]  # digest -> backbone state dict


def split_key(features: str) -> tuple[str, str | None]:
    name, _, digest = features.partition("@")
    return name, digest or None


class EmbedderPool:
    """Lazily builds, then keeps, one torch backbone and one embedder per features key.

    Prediction always runs on the CPU embedder (ONNX Runtime) so it never touches the GPU, which
    belongs to the worker thread; the worker asks for `for_worker`, on its device.
    """

    def __init__(self, cache_dir: Path, device: str, load_state: StateLoader, worker_runtime: str = "auto"):
        self.cache_dir, self.device, self.load_state = cache_dir, device, load_state
        self.worker_torch = device.startswith("cuda") or worker_runtime == "torch"
        self._lock = threading.RLock()
        self._backbones: dict[str, Backbone] = {}
        self._cpu: dict[str, Embedder] = {}
        self._device: dict[str, Embedder] = {}
        self._fronts: dict[tuple[str, int], Embedder] = {}

    def spec(self, features: str) -> BackboneSpec:
        return get_spec(split_key(features)[0])

    def backbone(self, features: str) -> Backbone:
        """The torch module on the CPU, shared: callers that change weights must copy it."""
        with self._lock:
            if features not in self._backbones:
                name, digest = split_key(features)
                if digest is None:
                    net = get_spec(name).load()
                else:
                    net = copy.deepcopy(self.backbone(name))
                    net.load_state_dict(self.load_state(digest))
                self._backbones[features] = net.eval()
            return self._backbones[features]

    def onnx_path(self, features: str) -> Path:
        name, digest = split_key(features)
        tag = f"{name}-{digest[:16]}" if digest else name
        return self.cache_dir / "backbones" / f"{tag}-{get_spec(name).feature_version}-u8.onnx"

    def cpu(self, features: str) -> Embedder:
        with self._lock:
            if features not in self._cpu:
                spec = self.spec(features)
                self._cpu[features] = _on_cpu(FeatureNet(self.backbone(features), spec.preprocessing),
                                              self.onnx_path(features), spec.preprocessing.input_size, "features")
            return self._cpu[features]

    def front(self, features: str, unfreeze: int) -> Embedder:
        """The network up to its last `unfreeze` blocks, whose output fine-tuning on the CPU caches
        (ml/finetune_cached.py): an ONNX Runtime graph like `cpu`'s, for the same reason."""
        key = (features, unfreeze)
        with self._lock:
            if key not in self._fronts:
                spec, whole = self.spec(features), self.onnx_path(features)
                path = whole.with_name(whole.name.replace("-u8.onnx", f"-front{unfreeze}-u8.onnx"))
                self._fronts[key] = _on_cpu(Front(self.backbone(features), spec.preprocessing, unfreeze), path,
                                            spec.preprocessing.input_size, "activations")
            return self._fronts[key]

    def for_worker(self, features: str) -> Embedder:
        if not self.worker_torch:
            return self.cpu(features)
        with self._lock:
            if features not in self._device:
                net = FeatureNet(copy.deepcopy(self.backbone(features)), self.spec(features).preprocessing)
                self._device[features] = TorchEmbedder(net, self.device)
            return self._device[features]

    def forget(self, features: str) -> None:
        with self._lock:
            for cache in (self._backbones, self._cpu, self._device):
                cache.pop(features, None)
            for key in [k for k in self._fronts if k[0] == features]:
                del self._fronts[key]


def _on_cpu(net, path: Path, input_size: int, output: str) -> Embedder:
    """ONNX Runtime on `net` exported once to `path` (derived data, rebuilt when missing), or PyTorch
    where ONNX Runtime is not installed."""
    if not onnx_available():
        return TorchEmbedder(net, "cpu")
    if not path.is_file():
        export_onnx(net, path, input_size, [output])
    return OrtEmbedder(path)
