"""Whole-model downloads: ONNX, pt2 (torch.export) and TorchScript; probabilities out, labels and
preprocessing inside.

TorchScript is a legacy format: the pinned torch deprecates `torch.jit.save` in favour of torch.export. It stays
while that torch still loads it; pt2 is its replacement.
"""

from __future__ import annotations

import copy
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

FORMATS = {"onnx": ".onnx", "pt2": ".pt2", "torchscript": ".pt"}
# The pt2 archive's second program: probabilities and similarity in one pass, like the ONNX file's two outputs.
PT2_WITH_SIMILARITY = "with_similarity"


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

    def without_imagenet_head(self) -> Classifier:
        """The same network sharing every weight, minus the backbone's pretrained ImageNet classifier: it is never
        run, but torch.export would still store its 1.3M weights in each program."""
        slim = copy.copy(self)
        slim._modules = dict(self._modules)
        slim.backbone = Backbone(self.backbone.features, self.backbone.blocks, None)
        return slim

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
                  f"(pt2: the program `{PT2_WITH_SIMILARITY}` gives both; TorchScript: the method `similarity`), "
                  "the mean cosine similarity to the 5 nearest training images; "
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


def write_pt2(classifier: Classifier, path: Path, metadata: dict[str, str]) -> None:
    """A torch.export archive with two programs: `model` (what torch.export.load returns: probabilities, as the
    contract says) and `with_similarity` (probabilities and similarity). One program cannot have two entry
    points, and a tuple from `model` would break `.module()(x)` giving the probabilities."""
    from torch.export.pt2_archive._package import package_pt2  # what torch.export.save calls, with one program

    input_size = int(metadata["input_size"])
    # A private copy: torch.export swaps a module's weights for fake tensors while it traces, and the backbone
    # is shared with predictions and with training, which copies it.
    net = copy.deepcopy(classifier.without_imagenet_head()).eval().cpu()
    # Two images: an example batch of one would be specialised to one. The size stays fixed (timm's "same"
    # padding is computed from it); the batch is dynamic.
    example = (torch.zeros(2, 3, input_size, input_size),)
    batch = ({0: torch.export.Dim("batch", min=1)},)
    with torch.no_grad():
        programs = {"model": torch.export.export(net, example, dynamic_shapes=batch),
                    PT2_WITH_SIMILARITY: torch.export.export(_BothOutputs(net), example, dynamic_shapes=batch)}
    for program in programs.values():
        # The archive stores each program's example input: one image is as good an example as two, at half the size.
        program.example_inputs = ((example[0][:1].clone(),), {})
    buf = io.BytesIO()
    package_pt2(buf, exported_programs=programs, extra_files=dict(metadata))
    _write_atomically(path, buf.getvalue())


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
    _write_atomically(path, buf.getvalue())


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(data)
    os.replace(tmp, path)


WRITERS = {"onnx": write_onnx, "pt2": write_pt2, "torchscript": write_torchscript}
