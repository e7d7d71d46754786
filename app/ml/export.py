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
from app.ml.ood import NEIGHBOURS
from app.ml.preprocess import Normalize
from app.ml.runtime import export_onnx

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}


class Classifier(nn.Module):
    """[0, 1] RGB NCHW in, class probabilities out: everything a downloaded model needs.

    `similarity` gives the mean cosine similarity to the nearest training embeddings (see ml/ood.py),
    for "none of these".
    """

    def __init__(self, backbone: Backbone, head: nn.Module, prep: Preprocessing, prototypes: torch.Tensor):
        super().__init__()
        self.normalize = Normalize(prep.mean, prep.std)
        self.backbone = backbone
        self.head = head
        self.register_buffer("prototypes", prototypes.float())
        self.k = max(1, min(NEIGHBOURS, len(prototypes)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(self.backbone(self.normalize(x))), dim=1)

    def similarity(self, x: torch.Tensor) -> torch.Tensor:
        return self.similarity_of(self.backbone(self.normalize(x)))

    def similarity_of(self, feats: torch.Tensor) -> torch.Tensor:
        sims = nn.functional.normalize(feats, dim=1) @ self.prototypes.T
        return torch.topk(sims, self.k, dim=1).values.mean(dim=1)


class _BothOutputs(nn.Module):
    """ONNX graphs have several outputs: probabilities first (as the contract says), then similarity."""

    def __init__(self, classifier: Classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.classifier
        feats = c.backbone(c.normalize(x))
        return torch.softmax(c.head(feats), dim=1), c.similarity_of(feats)


def model_metadata(*, labels: list[str], prep: Preprocessing, backbone: str, model_id: int,
                   project: str, version: int, unknown_threshold: float | None,
                   extra: dict | None = None) -> dict[str, str]:
    """String key/values stored in the file itself (ONNX metadata_props, TorchScript extra files)."""
    meta = {
        "labels": json.dumps(labels),
        "input_size": str(prep.input_size),
        "preprocessing": json.dumps(prep.as_dict()),
        "input": f"float32 NCHW, RGB in [0, 1]; resize shorter side to {prep.input_size} (bilinear), "
                 f"center-crop {prep.input_size}x{prep.input_size}; normalisation is inside the model",
        "output": "class probabilities in the order of `labels`; ONNX: a second output `similarity` "
                  "(TorchScript: the method `similarity`), the mean cosine similarity to the 5 nearest "
                  "training images; "
                  "below `unknown_threshold` the image is none of the classes",
        "backbone": backbone,
        "snapclass_model_id": str(model_id),
        "snapclass_model_version": str(version),
        "project": project,
        "producer": "snapclass",
        "unknown_threshold": json.dumps(unknown_threshold),
    }
    for key, value in (extra or {}).items():
        meta[key] = value if isinstance(value, str) else json.dumps(value)
    return meta


def write_onnx(classifier: Classifier, path: Path, metadata: dict[str, str]) -> None:
    input_size = int(metadata["input_size"])
    export_onnx(_BothOutputs(classifier), path, input_size, ["probabilities", "similarity"], metadata)


def write_torchscript(classifier: Classifier, path: Path, metadata: dict[str, str]) -> None:
    input_size = int(metadata["input_size"])
    classifier = classifier.eval().cpu()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # Tracing at the fixed input size keeps timm's "same" padding static.
        example = torch.zeros(1, 3, input_size, input_size)
        scripted = torch.jit.trace_module(classifier, {"forward": example, "similarity": example})
    buf = io.BytesIO()
    torch.jit.save(scripted, buf, _extra_files=dict(metadata))
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


WRITERS = {"onnx": write_onnx, "torchscript": write_torchscript}
