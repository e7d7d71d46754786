"""Opening a model file that snapclass downloaded (`onnx`, `pt2`) as a new project: its classes come from the
model's labels and its current model is the file's network, rebuilt (app/ml/modelfile.py reads it); predict,
live, share and download work at once, and photos added later train on from it.

A fine-tuned backbone travels with the file: it becomes the project's base, so training continues from it.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import crud
from app.embedders import EmbedderPool
from app.ml import checkpoint, modelfile
from app.ml.backbones import BackboneUnavailable, get_spec
from app.models import Project, TrainedModel
from app.names import normalize_name
from app.projectfile import ProjectFileError

MODEL_FILE_MAX_BYTES = 1024**3  # a snapclass download is tens of MB; its prototypes are capped per class


def recover(kind: str, *, data: bytes | None = None, archive=None, embedders: EmbedderPool) -> modelfile.Recovered:
    """The parts of the model in the file, checked (an ONNX file also run against their rebuilt network)."""

    def resolve(name: str):
        spec = _spec(name)
        return embedders.backbone(spec.name), spec.feature_dim

    if kind == "onnx":
        rec = modelfile.read_onnx(data, resolve)
    else:
        rec = modelfile.read_pt2(lambda name: archive.read(name, MODEL_FILE_MAX_BYTES), archive.names, resolve)
    spec = get_spec(rec.backbone)
    modelfile.check_preprocessing(rec.preprocessing, spec.preprocessing)
    if kind == "onnx":
        classifier = modelfile.rebuild(rec, embedders.backbone(spec.name), spec.preprocessing, spec.feature_dim)
        modelfile.check_onnx_agrees(data, classifier, spec.preprocessing.input_size)
    return rec


def _spec(name: str):
    try:
        spec = get_spec(name)
    except BackboneUnavailable:
        raise modelfile.ModelFileError(f"it uses the backbone {name!r}, which this server does not know") from None
    if not spec.available:
        raise modelfile.ModelFileError(f"it uses the backbone {name!r}, whose weights are not on this server")
    return spec


def add_project(rec: modelfile.Recovered, *, filename: str, session: Session, embedders: EmbedderPool,
                owner_id: int | None, free_name) -> Project:
    """The new project with one class per label and the file's model as its current model (flushed, not
    committed)."""
    spec = get_spec(rec.backbone)
    digest = None
    if rec.backbone_state is not None:
        state = modelfile.full_backbone_state(rec.backbone_state, embedders.backbone(spec.name))
        digest = crud.store_backbone_weights(session=session, backbone=spec.name,
                                             state=checkpoint.state_bytes(state))
    base = normalize_name(rec.project or "") or _stem(filename) or "Imported model"
    project = Project(name=free_name(session, owner_id, base[:200]), backbone=spec.name, owner_id=owner_id,
                      base_digest=digest)
    session.add(project)
    session.flush()
    classes = []
    for label in rec.labels:
        try:
            classes.append(crud.create_class(session=session, project_id=project.id, name=normalize_name(label)))
        except (ValueError, crud.Conflict) as exc:
            raise ProjectFileError(f"the model's label {label[:100]!r} cannot name a class: {exc}") from None
    weights = checkpoint.pack(head_arch=rec.head_arch, head_state=rec.head_state, prototypes=rec.prototypes)
    note = (f"Opened from the file {filename!r}, a model downloaded from snapclass ({rec.kind}); it was not "
            "trained here, so it has no evaluation. Add photos and train to continue from it.")
    model = TrainedModel(
        project_id=project.id, version=1, backbone=spec.name,
        features=f"{spec.name}@{digest}" if digest else spec.name, mode="imported",
        labels=[c.name for c in classes], class_ids=[c.id for c in classes],
        format_version=checkpoint.FORMAT_VERSION, weights=weights,
        metrics={"mode_reason": note, "imported_from": {"format": rec.kind, "filename": filename,
                                                        "fine_tuned_backbone": digest is not None}},
        unknown_threshold=rec.unknown_threshold, unknown_threshold_calibrated=rec.unknown_threshold)
    session.add(model)
    session.flush()
    project.current_model_id = model.id
    session.flush()
    return project


def _stem(filename: str) -> str:
    stem = filename.rsplit("/", 1)[-1]
    for ext in (".int8.onnx", ".onnx", ".pt2"):
        if stem.lower().endswith(ext):
            return normalize_name(stem[: -len(ext)])
    return normalize_name(stem)
