"""Writing a project file: the original photos, the chosen models and their fine-tuned backbones, and a
manifest that lists each with its sha256."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session

from app import __version__, crud
from app.models import Project, TrainedModel
from app.projectfile.manifest import FORMAT_VERSION, MANIFEST
from app.storage import ORIGINAL, BlobStore

Which = Literal["current", "all", "none"]
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
# Evaluation rows that name a sample; in the file they name a photo by its index in the manifest.
SAMPLE_ROWS = ("val_predictions", "misclassified")


def slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-").lower()[:60] or "project"


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


def chosen_models(session: Session, project: Project, which: Which) -> list[TrainedModel]:
    if which == "none":
        return []
    if which == "current":
        return [project.current_model] if project.current_model else []
    return sorted(crud.list_models(session=session, project_id=project.id), key=lambda m: m.version)


def remap_rows(metrics: dict, ids: dict, key_from: str, key_to: str) -> dict:
    """Evaluation rows point at samples by id; rewrite those pointers with `ids` (None for one not found)."""
    out = dict(metrics)
    for field in SAMPLE_ROWS:
        rows = out.get(field)
        if isinstance(rows, list):
            out[field] = [{**{k: v for k, v in row.items() if k != key_from}, key_to: ids.get(row.get(key_from))}
                          if isinstance(row, dict) and key_from in row else row for row in rows]
    return out


def write_project(*, session: Session, store: BlobStore, project: Project, which: Which, path: Path) -> None:
    """The project as a zip at `path`. Photos and weights are stored as they are (they do not compress)."""
    classes = list(project.classes)
    order = {c.id: i for i, c in enumerate(classes)}
    photos, index = [], {}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for ci, image_class in enumerate(classes):
            for n, sample in enumerate(image_class.samples, start=1):
                data = store.read(sample.key, ORIGINAL)
                name = f"photos/{ci}/{n}.{EXTENSIONS.get(sample.original_format, 'bin')}"
                zf.writestr(name, data)
                index[sample.id] = len(photos)
                photos.append({"path": name, "class": image_class.name, "source": sample.source,
                               "burst_id": sample.burst_id, "original_name": sample.filename,
                               "sha256": hashlib.sha256(data).hexdigest(), "created_at": _iso(sample.created_at)})
        models = chosen_models(session, project, which)
        digests = {m.features.partition("@")[2] for m in models} | {project.base_digest}
        backbones = []
        for digest in sorted(d for d in digests if d):
            name = f"backbones/{digest}.pt"
            state = crud.backbone_state(session=session, digest=digest)
            zf.writestr(name, state)
            backbones.append({"backbone": project.backbone, "path": name,
                              "sha256": hashlib.sha256(state).hexdigest()})
        model_entries = []
        for model in models:
            name = f"models/v{model.version}/weights.pt"
            zf.writestr(name, model.weights)
            model_entries.append({
                "version": model.version, "mode": model.mode, "backbone": model.backbone,
                "features": model.features, "labels": list(model.labels),
                "classes": [order.get(cid) for cid in model.class_ids],
                "unknown_threshold": model.unknown_threshold,
                "unknown_threshold_calibrated": model.unknown_threshold_calibrated,
                "metrics": remap_rows(model.metrics or {}, index, "sample_id", "photo"),
                "created_at": _iso(model.created_at), "path": name,
                "sha256": hashlib.sha256(model.weights).hexdigest()})
        current = project.current_model
        manifest = {
            "format_version": FORMAT_VERSION, "snapclass_version": __version__,
            "exported_at": _iso(datetime.now(timezone.utc)),
            "project": {"name": project.name, "backbone": project.backbone, "created_at": _iso(project.created_at),
                        "base_digest": project.base_digest},
            "classes": [{"name": c.name, "order": i} for i, c in enumerate(classes)],
            "photos": photos, "backbones": backbones, "models": model_entries,
            "current_model": current.version if current is not None and current in models else None,
        }
        # NaN can stand in a model's metrics (as in the database's JSON); the reader accepts it there.
        zf.writestr(MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False), zipfile.ZIP_DEFLATED)
