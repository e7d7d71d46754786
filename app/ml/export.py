"""Whole-model downloads: ONNX and TorchScript, probabilities out, labels and preprocessing inside."""

from __future__ import annotations

import io
import json
import os
import secrets
import warnings
from pathlib import Path

import torch
from torch import nn

from app.ml.backbones import Backbone, Preprocessing
from app.ml.head import Head
from app.ml.preprocess import Normalize
from app.ml.runtime import export_onnx

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


class Classifier(nn.Module):
    """[0, 1] RGB NCHW in, class probabilities out: everything a downloaded model needs."""

    def __init__(self, backbone: Backbone, head: Head, prep: Preprocessing):
        super().__init__()
        self.normalize = Normalize(prep.mean, prep.std)
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(self.backbone(self.normalize(x))), dim=1)


def model_metadata(*, labels: list[str], prep: Preprocessing, backbone: str, model_id: int,
                   project: str, version: int, extra: dict | None = None) -> dict[str, str]:
    """String key/values stored in the file itself (ONNX metadata_props, TorchScript extra files)."""
    meta = {
        "labels": json.dumps(labels),
        "input_size": str(prep.input_size),
        "preprocessing": json.dumps(prep.as_dict()),
        "input": f"float32 NCHW, RGB in [0, 1]; resize shorter side to {prep.input_size} (bilinear), "
                 f"center-crop {prep.input_size}x{prep.input_size}; normalisation is inside the model",
        "output": "class probabilities in the order of `labels`",
        "backbone": backbone,
        "snapclass_model_id": str(model_id),
        "snapclass_model_version": str(version),
        "project": project,
        "producer": "snapclass",
    }
    for key, value in (extra or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    return meta


def write_onnx(classifier: Classifier, path: Path, metadata: dict[str, str]) -> None:
    input_size = int(metadata["input_size"])
    export_onnx(classifier, path, input_size, ["probabilities"], metadata)


def write_torchscript(classifier: Classifier, path: Path, metadata: dict[str, str]) -> None:
    input_size = int(metadata["input_size"])
    classifier = classifier.eval().cpu()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # Tracing at the fixed input size keeps timm's "same" padding static.
        scripted = torch.jit.trace(classifier, torch.zeros(1, 3, input_size, input_size))
    buf = io.BytesIO()
    torch.jit.save(scripted, buf, _extra_files=dict(metadata))
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


WRITERS = {"onnx": write_onnx, "torchscript": write_torchscript}
