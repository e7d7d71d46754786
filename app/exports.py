"""Files a user downloads, built from a stored model and cached under the data dir, each checked against the
served model on the project's held-out photos when it is built.

The check's result lies next to the cached file as `<file>.parity.json`. A file is built by its first download, or
in the background by app.export_builder when asked for every format (building them on a GET would take a minute
of CPU). A format whose top-1 agreement is below `parity.MIN_AGREEMENT` is kept in the cache with its result but
not served.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sqlalchemy import select

from app import inference, webapp
from app.db import session_scope
from app.embedders import EmbedderPool
from app.extraction import pixels
from app.ml import checkpoint, parity, quantize
from app.ml.backbones import get_spec
from app.ml.export import FORMATS, WRITERS, Classifier, model_metadata
from app.ml.head import head_from_arch
from app.models import ImageClass, Sample, TrainedModel
from app.services import Services

# The int8 file is the float ONNX graph quantized: same inputs, outputs and metadata keys. The webapp zip carries
# the float ONNX file itself.
ALL_FORMATS = {**FORMATS, "onnx-int8": ".int8.onnx", "webapp": ".webapp.zip"}
CALIBRATION_PHOTOS = 64  # enough for stable activation ranges; more only slows the build
CHECK_PHOTOS = 200  # held-out photos a build is checked on, at most (about 15 ms each per runtime)

_locks: dict[tuple[int, str], threading.Lock] = {}
_locks_guard = threading.Lock()


class NotOffered(Exception):
    """The file was built but does not answer as the served model does."""


@dataclass
class Export:
    path: Path
    report: dict  # the parity sidecar: format, agreement, max_prob_diff, size_bytes, photos, offered, reason, …


def export_path(cache_dir: Path, model: TrainedModel, fmt: str) -> Path:
    # Keyed by content as well as id: a cache dir may outlive (or be shared by) several databases.
    identity = json.dumps([model.labels, model.version, model.features, model.unknown_threshold]
                          + ([webapp.content_digest()] if fmt == "webapp" else []))
    digest = hashlib.sha256(model.weights + identity.encode()).hexdigest()
    return cache_dir / "exports" / f"model-{model.id}-{digest[:16]}{ALL_FORMATS[fmt]}"


def download_name(project_name: str, version: int, fmt: str) -> str:
    """The file name a download gets: the project's name as a slug, the version and the format's extension."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", project_name).strip("-").lower() or "model"
    return f"{slug}-v{version}{ALL_FORMATS[fmt]}"


def report_path(path: Path) -> Path:
    return path.with_name(path.name + ".parity.json")


def build_classifier(model: TrainedModel, embedders: EmbedderPool) -> Classifier:
    ckpt = checkpoint.unpack(model.weights)
    head = head_from_arch(ckpt["head_arch"])
    head.load_state_dict(ckpt["head_state"])
    spec = get_spec(model.backbone)
    protos = ckpt["prototypes"] if ckpt.get("prototypes") is not None else torch.zeros(1, spec.feature_dim)
    return Classifier(embedders.backbone(model.features), head, spec.preprocessing, protos).eval()


def export_model(model: TrainedModel, project_name: str, fmt: str, *, services: Services) -> Export:
    """The model as an ONNX (float or int8), pt2 or TorchScript file, or the webapp zip, with its parity report;
    built and checked once per model and format, then reused. Raises NotOffered when the file disagrees with the
    served model, webapp.RuntimeMissing when the webapp zip cannot be built here."""
    path = export_path(services.settings.cache_dir, model, fmt)
    with _locks_guard:
        lock = _locks.setdefault((model.id, fmt), threading.Lock())
    with lock:
        sidecar = report_path(path)
        if not (path.is_file() and sidecar.is_file()):
            started = time.perf_counter()
            if fmt == "webapp":
                report = _build_webapp(model, project_name, path, services)
            elif fmt == "onnx-int8":
                float_path = export_model(model, project_name, "onnx", services=services).path
                report = _build_int8(model, project_name, float_path, path, _served_answers(model, services),
                                     services)
            else:
                served = _served_answers(model, services)
                if not path.is_file():
                    WRITERS[fmt](build_classifier(model, services.embedders), path,
                                 _metadata(model, project_name, model.unknown_threshold))
                report = _check(fmt, path, served, unknown_threshold=model.unknown_threshold)
            report["build_seconds"] = round(time.perf_counter() - started, 2)
            _write_json(sidecar, report)
        report = json.loads(sidecar.read_text())
    if not report["offered"]:
        raise NotOffered(report["reason"])
    return Export(path, report)


@dataclass
class _Served:
    crops: np.ndarray  # uint8 (N, S, S, 3), prepared as documented
    probs: np.ndarray
    sims: np.ndarray | None
    checked_on: str


def _served_answers(model: TrainedModel, services: Services) -> _Served:
    """The served model's answers on the model's held-out photos (the validation rows of its metrics): what
    every download must reproduce. A model trained on too few photos for validation is checked on its
    training photos instead, and the report says so."""
    held_out = [row["sample_id"] for row in (model.metrics or {}).get("val_predictions", [])]
    items = _spread(_sample_items(services, model, only=held_out))
    checked_on = "held-out photos"
    if not items:
        items, checked_on = _spread(_sample_items(services, model)), "training photos (no held-out photos)"
    crops = _crops(services, model, items)
    loaded = inference.load(model, services.embedders)
    answers = loaded.predict_pixels(crops) if len(crops) else []
    probs = np.stack([a.probabilities for a in answers]) if answers else np.zeros((0, len(model.labels)))
    sims = None if not answers or answers[0].similarity is None else np.array([a.similarity for a in answers])
    return _Served(crops, probs, sims, checked_on)


def _spread(items: list, n: int = CHECK_PHOTOS) -> list:
    """At most n of `items`, evenly spaced: the rows come class by class, and the first n would miss a class."""
    return items if len(items) <= n else [items[i] for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def _sample_items(services: Services, model: TrainedModel, only: list[int] | None = None) -> list[tuple[int, str]]:
    """(sample id, storage key) of the model's photos still stored: `only` these ids, or every photo of its
    classes uploaded before it was trained, interleaved class by class."""
    query = select(Sample.id, Sample.key, Sample.class_id).join(ImageClass)
    if only is not None:
        query = query.where(Sample.id.in_(only))
    else:
        query = query.where(Sample.class_id.in_(model.class_ids), Sample.created_at <= model.created_at)
    with session_scope(services.session_factory) as s:
        rows = s.execute(query.where(ImageClass.project_id == model.project_id).order_by(Sample.id)).all()
        if not rows and only is None:  # an imported project's photos are newer than its model: take them all
            rows = s.execute(select(Sample.id, Sample.key, Sample.class_id)
                             .where(Sample.class_id.in_(model.class_ids)).order_by(Sample.id)).all()
    if only is not None:
        return [(r[0], r[1]) for r in rows]
    by_class: dict[int, list[tuple[int, str]]] = {}
    for sid, key, cid in rows:
        by_class.setdefault(cid, []).append((sid, key))
    columns = list(by_class.values())
    return [col[i] for i in range(max(map(len, columns), default=0)) for col in columns if i < len(col)]


def _crops(services: Services, model: TrainedModel, items: list[tuple[int, str]]) -> np.ndarray:
    spec = get_spec(model.backbone)
    size = spec.preprocessing.input_size
    get = pixels(services, spec, 0)  # the crop stored at upload: what /predict makes of the same photo
    return np.stack([get(item) for item in items]) if items else np.zeros((0, size, size, 3), np.uint8)


def _check(fmt: str, path: Path, served: _Served, **extra) -> dict:
    probs = parity.run_file(fmt, path, served.crops)[0] if len(served.crops) else served.probs
    return _report(fmt, path, parity.compare(served.probs, probs), served.checked_on, **extra)


def _report(fmt: str, path: Path, result: parity.Parity, checked_on: str, **extra) -> dict:
    offered = result.agreement is None or result.agreement >= parity.MIN_AGREEMENT
    reason = None if offered else (
        f"the {fmt} file agrees with the served model on only {round(result.agreement * result.photos)} of "
        f"{result.photos} {checked_on} (at least {parity.MIN_AGREEMENT:.0%} needed), so it is not offered")
    return {"format": fmt, "agreement": result.agreement, "max_prob_diff": result.max_prob_diff,
            "size_bytes": path.stat().st_size, "photos": result.photos, "checked_on": checked_on,
            "offered": offered, "reason": reason, **extra}


def _build_int8(model: TrainedModel, project_name: str, float_path: Path, path: Path, served: _Served,
                services: Services) -> dict:
    calibration = _crops(services, model, _sample_items(services, model)[:CALIBRATION_PHOTOS])
    if not len(calibration):  # every photo deleted since: nothing to measure the activations on (not cached)
        raise NotOffered("the onnx-int8 file is calibrated on the project's photos, and this model's are gone")
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    try:
        quantize.quantize(float_path, tmp, calibration)
        probs = parity.run_file("onnx-int8", tmp, served.crops)[0] if len(served.crops) else served.probs
        threshold = model.unknown_threshold
        if served.sims is not None and len(served.crops):
            threshold = quantize.shifted_threshold(threshold, quantize.similarity_matrix(float_path, served.crops),
                                                   quantize.similarity_matrix(tmp, served.crops))
        quantize.set_metadata(tmp, _metadata(model, project_name, threshold, {
            "quantization": "ONNX Runtime static int8 (QDQ, per-channel weights), calibrated on "
                            f"{len(calibration)} of the project's photos"}))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    float_size = float_path.stat().st_size
    return _report("onnx-int8", path, parity.compare(served.probs, probs), served.checked_on,
                   unknown_threshold=threshold, calibration_photos=len(calibration),
                   size_vs_float=round(path.stat().st_size / float_size, 4))


def _build_webapp(model: TrainedModel, project_name: str, path: Path, services: Services) -> dict:
    """The zip's model is the float ONNX file, byte for byte: its parity is that file's, with the zip's size."""
    webapp.runtime_files()  # RuntimeMissing before the float file is built for nothing
    float_ = export_model(model, project_name, "onnx", services=services)
    webapp.write_zip(float_.path, path)
    report = {**float_.report, "format": "webapp", "size_bytes": path.stat().st_size}
    report.pop("build_seconds", None)
    return report


def _metadata(model: TrainedModel, project_name: str, threshold: float | None, extra: dict | None = None) -> dict:
    spec = get_spec(model.backbone)
    return model_metadata(labels=list(model.labels), prep=spec.preprocessing, backbone=model.backbone,
                          model_id=model.id, project=project_name, version=model.version,
                          unknown_threshold=threshold, extra=extra)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + f".{secrets.token_hex(4)}.part")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
