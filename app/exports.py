"""Files a user downloads, built from a stored model and cached under the data dir."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import torch

from app.embedders import EmbedderPool
from app.ml import checkpoint
from app.ml.backbones import get_spec
from app.ml.export import FORMATS, WRITERS, Classifier, model_metadata
from app.ml.head import head_from_arch
from app.models import TrainedModel

_locks: dict[tuple[int, str], threading.Lock] = {}
_locks_guard = threading.Lock()


def export_path(cache_dir: Path, model: TrainedModel, fmt: str) -> Path:
    # Keyed by content as well as id: a cache dir may outlive (or be shared by) several databases.
    identity = json.dumps([model.labels, model.version, model.features, model.unknown_threshold])
    digest = hashlib.sha256(model.weights + identity.encode()).hexdigest()
    return cache_dir / "exports" / f"model-{model.id}-{digest[:16]}{FORMATS[fmt]}"


def build_classifier(model: TrainedModel, embedders: EmbedderPool) -> Classifier:
    ckpt = checkpoint.unpack(model.weights)
    head = head_from_arch(ckpt["head_arch"])
    head.load_state_dict(ckpt["head_state"])
    spec = get_spec(model.backbone)
    protos = ckpt["prototypes"] if ckpt.get("prototypes") is not None else torch.zeros(1, spec.feature_dim)
    return Classifier(embedders.backbone(model.features), head, spec.preprocessing, protos).eval()


def export_model(model: TrainedModel, project_name: str, fmt: str, *, cache_dir: Path,
                 embedders: EmbedderPool) -> Path:
    """The model as an ONNX, pt2 or TorchScript file; built once per model and format, then reused."""
    path = export_path(cache_dir, model, fmt)
    with _locks_guard:
        lock = _locks.setdefault((model.id, fmt), threading.Lock())
    with lock:
        if not path.is_file():
            spec = get_spec(model.backbone)
            meta = model_metadata(labels=list(model.labels), prep=spec.preprocessing, backbone=model.backbone,
                                  model_id=model.id, project=project_name, version=model.version,
                                  unknown_threshold=model.unknown_threshold)
            WRITERS[fmt](build_classifier(model, embedders), path, meta)
    return path
