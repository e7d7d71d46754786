"""Running a feature network: one small interface, two runtimes.

ONNX Runtime is the CPU path (about 2.5x eager PyTorch on this machine's CPU); PyTorch is the
CUDA path (channels-last, fp16 autocast). Both take uint8 RGB images (N, S, S, 3), exactly what
decoding gives, and do the cast and transpose inside the network, where ONNX Runtime's kernels (or
the GPU, after a 4x smaller upload) do it faster than numpy. Both return float32 features;
tests/test_runtime.py holds them to the same embeddings.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from app.ml.backbones import Backbone, Preprocessing
from app.ml.preprocess import Normalize


class Embedder(Protocol):
    name: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class FeatureNet(nn.Module):
    """uint8 RGB (N, S, S, 3) in, pooled backbone features out (float [0, 1] NCHW with uint8_input=False)."""

    def __init__(self, backbone: Backbone, prep: Preprocessing, uint8_input: bool = True):
        super().__init__()
        self.normalize = Normalize(prep.mean, prep.std)
        self.backbone = backbone
        self.uint8_input = uint8_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.uint8_input:
            # NHWC permuted to NCHW is already the channels-last layout the convolutions prefer.
            x = x.permute(0, 3, 1, 2).float() * (1 / 255)
        return self.backbone(self.normalize(x))

    def example(self, size: int) -> torch.Tensor:
        if self.uint8_input:
            return torch.zeros(1, size, size, 3, dtype=torch.uint8)
        return torch.zeros(1, 3, size, size)


class TorchEmbedder:
    name = "torch"

    def __init__(self, net: nn.Module, device: str = "cpu"):
        self.device = torch.device(device)
        self.net = net.eval().to(self.device, memory_format=torch.channels_last)
        self.amp = self.device.type == "cuda"

    @torch.inference_mode()
    def __call__(self, x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            out = self.net(t)
        return out.float().cpu().numpy()


# ONNX Runtime's arena keeps the largest batch's activations for the life of the session: Lite0 at 288 px
# holds ~1.4 GiB after a batch of 32, ~0.2 GiB after batches of 4, which on this 2-core CPU also run
# faster (30-40 %: they stay in cache). Callers still hand over batches of 32 (fewer database writes).
ORT_CHUNK = 4


class OrtEmbedder:
    name = "onnxruntime"

    def __init__(self, onnx_path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        # Idle ORT threads otherwise spin for a while after each run, starving the PyTorch head
        # training and the image decoding that share these cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(x) <= ORT_CHUNK:
            return self.session.run(None, {self.input_name: x})[0]
        return np.concatenate([self.session.run(None, {self.input_name: x[i:i + ORT_CHUNK]})[0]
                               for i in range(0, len(x), ORT_CHUNK)])


def onnx_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(module: nn.Module, path: Path, input_size: int, output_names: list[str],
                metadata: dict[str, str] | None = None) -> None:
    """Trace `module` to an ONNX file with a dynamic batch axis; written atomically."""
    import onnx

    module = module.eval().cpu()
    dummy = module.example(input_size) if hasattr(module, "example") else torch.zeros(1, 3, input_size, input_size)
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter warns that it is legacy
        # The legacy exporter needs no onnxscript and handles timm's "same" padding at a fixed size.
        torch.onnx.export(
            module, (dummy,), str(tmp), input_names=["input"], output_names=output_names,
            dynamic_axes={"input": {0: "batch"}, **{n: {0: "batch"} for n in output_names}},
            opset_version=17, dynamo=False,
        )
    if metadata:
        model = onnx.load(str(tmp))
        for key, value in metadata.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(model, str(tmp))
    os.replace(tmp, path)
