"""Opening a project file: trust nothing, check everything, then make a new project, all or nothing.

Cheap checks first (the zip's directory, the manifest, that both list the same entries), then the weights
(read and loaded, nothing written), then the photos, each decoded again through the upload validation.
Photo files are written before their rows; on any failure they are deleted and the caller rolls back.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crud
from app.config import Settings
from app.embedders import EmbedderPool
from app.ml import checkpoint
from app.ml.backbones import BackboneUnavailable, get_spec
from app.ml.head import head_from_arch
from app.ml.modelfile import ModelFileError
from app.models import Project, TrainedModel
from app.projectfile import ProjectFileError, modelfile
from app.projectfile.manifest import MANIFEST, Manifest, ModelEntry, parse
from app.projectfile.safezip import Limits, SafeZip
from app.projectfile.write import remap_rows
from app.storage import BlobStore
from app.uploads import store_files

NOT_PROJECT = "not a snapclass project file"
MAX_HEADS, MAX_HIDDEN = 32, 4096  # beyond any head snapclass trains: a bigger one is an attempt to exhaust memory


def limits(settings: Settings) -> Limits:
    return Limits(settings.project_file_max_entries, settings.project_file_max_unpacked_bytes,
                  settings.project_file_max_ratio)


def model_file_kind(head: bytes, names: set[str] | None = None) -> str | None:
    """"onnx", "pt2" or "torchscript" when the bytes look like a model file snapclass downloads."""
    if names is None:
        # ModelProto starts with field 1, ir_version, a small varint.
        return "onnx" if len(head) > 1 and head[0] == 0x08 and 3 <= head[1] <= 20 else None
    if any(n.endswith("/archive_format") for n in names):
        return "pt2"
    if any(n.endswith("/data.pkl") for n in names):
        return "torchscript"
    return None


def _refuse_torchscript() -> None:
    raise ProjectFileError(f"{NOT_PROJECT}: this is a TorchScript model file, which snapclass cannot open safely "
                           "(loading one can run code): open the model's .onnx or .pt2 download instead, or the "
                           "project file saved with \"Save project to a file\"")


def open_archive(file: BinaryIO, size: int, settings: Settings) -> tuple[str | None, SafeZip | None]:
    """What the file is: (None, zip) for a project file, ("onnx", None) or ("pt2", zip) for a model file
    snapclass downloaded. Nothing unpacked yet."""
    if size > settings.project_file_max_bytes:
        raise ProjectFileError(f"the file is {size / 1024**2:,.0f} MiB; at most "
                               f"{settings.project_file_max_bytes / 1024**2:,.0f} MiB are accepted", 413)
    head = file.read(8)
    file.seek(0)
    if not head.startswith(b"PK") and model_file_kind(head) == "onnx":
        return "onnx", None
    archive = SafeZip(file)
    kind = None if MANIFEST in archive.names else model_file_kind(head, archive.names)
    if kind == "torchscript":
        _refuse_torchscript()
    archive.check(limits(settings))
    return kind, archive


def open_file(archive: SafeZip, settings: Settings) -> Manifest:
    """The project file's manifest, checked, and checked against the zip's entries; nothing unpacked but the
    manifest."""
    if MANIFEST not in archive.names:
        raise ProjectFileError(f"{NOT_PROJECT}: it has no {MANIFEST}")
    manifest = parse(archive.read(MANIFEST, settings.project_file_max_manifest_bytes))
    check_consistent(manifest)
    listed = listed_paths(manifest)
    extra = sorted(archive.names - listed - {MANIFEST})
    if extra:
        raise ProjectFileError(f"the entry {extra[0]!r} is not listed in {MANIFEST}"
                               + (f" (nor are {len(extra) - 1} more)" if len(extra) > 1 else ""))
    missing = sorted(listed - archive.names)
    if missing:
        raise ProjectFileError(f"{MANIFEST} lists {missing[0]!r}, which is not in the file"
                               + (f" (nor are {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return manifest


def listed_paths(manifest: Manifest) -> set[str]:
    paths = [p.path for p in manifest.photos] + [b.path for b in manifest.backbones] + [m.path for m in manifest.models]
    if len(set(paths)) != len(paths) or MANIFEST in paths:
        raise ProjectFileError(f"{MANIFEST} lists one entry for two things")
    return set(paths)


def _unique(values: list, what: str) -> None:
    if len(set(values)) != len(values):
        raise ProjectFileError(f"{MANIFEST}: two {what} are the same")


def check_consistent(m: Manifest) -> None:
    """What the schema cannot say: every reference points at something listed, nothing twice."""
    names = [c.name.strip() for c in m.classes]
    if not all(names):
        raise ProjectFileError(f"{MANIFEST}: a class has a blank name")
    if not m.project.name.strip():
        raise ProjectFileError(f"{MANIFEST}: the project has a blank name")
    _unique(names, "class names")
    if sorted(c.order for c in m.classes) != list(range(len(m.classes))):
        raise ProjectFileError(f"{MANIFEST}: the classes' order is not 0, 1, 2, …")
    unknown = {p.class_ for p in m.photos} - {c.name for c in m.classes}
    if unknown:
        raise ProjectFileError(f"{MANIFEST}: a photo names the class {sorted(unknown)[0]!r}, which is not listed")
    digests = {b.sha256: b for b in m.backbones}
    _unique([b.sha256 for b in m.backbones], "fine-tuned backbones")
    if any(b.backbone != m.project.backbone for b in m.backbones):
        raise ProjectFileError(f"{MANIFEST}: a fine-tuned backbone is not the project's {m.project.backbone!r}")
    if m.project.base_digest and m.project.base_digest not in digests:
        raise ProjectFileError(f"{MANIFEST}: the project's base backbone is not in the file")
    _unique([x.version for x in m.models], "model versions")
    for model in m.models:
        _check_model_entry(model, m, set(digests))
    if m.current_model is not None and m.current_model not in {x.version for x in m.models}:
        raise ProjectFileError(f"{MANIFEST}: the current model v{m.current_model} is not in the file")


def _check_model_entry(model: ModelEntry, m: Manifest, digests: set[str]) -> None:
    v = f"{MANIFEST}: model v{model.version}"
    name, _, digest = model.features.partition("@")
    if model.backbone != m.project.backbone or name != model.backbone:
        raise ProjectFileError(f"{v} uses {model.features!r}, not the project's backbone {m.project.backbone!r}")
    if digest and digest not in digests:
        raise ProjectFileError(f"{v}'s fine-tuned backbone is not in the file")
    if len(model.classes) != len(model.labels) or any(
            c is not None and not 0 <= c < len(m.classes) for c in model.classes):
        raise ProjectFileError(f"{v}: its classes do not match its labels and the project's classes")
    for field in ("val_predictions", "misclassified"):
        rows = model.metrics.get(field, [])
        if not isinstance(rows, list) or not all(
                isinstance(r, dict) and (r.get("photo") is None or type(r.get("photo")) is int
                                         and 0 <= r["photo"] < len(m.photos)) for r in rows):
            raise ProjectFileError(f"{v}: its evaluation names photos that are not in the file")


def _verified(archive: SafeZip, path: str, sha256: str, cap: int) -> bytes:
    data = archive.read(path, cap)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ProjectFileError(f"the entry {path!r} does not match its sha256 in {MANIFEST}: it is damaged or altered")
    return data


def _check_backbone_state(data: bytes, path: str, reference: torch.nn.Module) -> None:
    try:
        state = checkpoint.load_state(data)
    except checkpoint.CheckpointError as exc:
        raise ProjectFileError(f"{path}: {exc}") from None
    expected = reference.state_dict()
    if not isinstance(state, dict) or state.keys() != expected.keys() or any(
            not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape or state[k].dtype != v.dtype
            for k, v in expected.items()):
        raise ProjectFileError(f"{path} is not a state of the backbone {type(reference).__name__}")


def _check_arch(arch, in_dim: int, n_classes: int) -> None:
    members = arch.get("ensemble") if isinstance(arch, dict) else None
    members = members if isinstance(members, list) else [arch]
    if not 1 <= len(members) <= MAX_HEADS or not all(
            isinstance(a, dict) and a.get("in_dim") == in_dim and a.get("num_classes") == n_classes
            and type(a.get("hidden")) is int and 1 <= a["hidden"] <= MAX_HIDDEN
            and isinstance(a.get("dropout", 0.0), float | int) and 0 <= a.get("dropout", 0.0) < 1 for a in members):
        raise ValueError(f"the head does not take {in_dim} features to {n_classes} classes")


def _check_model_weights(data: bytes, entry: ModelEntry, feature_dim: int) -> None:
    where = f"model v{entry.version} ({entry.path})"
    try:
        ckpt = checkpoint.unpack(data)
        _check_arch(ckpt.get("head_arch"), feature_dim, len(entry.labels))
        head = head_from_arch(ckpt["head_arch"])
        head.load_state_dict(ckpt["head_state"])
        protos = ckpt.get("prototypes")
        if protos is not None and (not isinstance(protos, torch.Tensor) or protos.ndim != 2
                                   or protos.shape[1] != feature_dim):
            raise ValueError("its training embeddings have the wrong shape")
        with torch.inference_mode():
            out = head.eval()(torch.zeros(1, feature_dim))
        if out.shape != (1, len(entry.labels)):
            raise ValueError("its head does not give one score per label")
    except (checkpoint.CheckpointError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise ProjectFileError(f"{where}: the weights cannot be used ({exc})") from None


def free_name(session: Session, owner_id: int | None, name: str) -> str:
    """`name`, or "name (2)", "name (3)"… when the owner already has a project of that name."""
    owner = Project.owner_id == owner_id if owner_id is not None else Project.owner_id.is_(None)
    taken = set(session.scalars(select(Project.name).where(owner)))
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        suffix = f" ({n})"
        candidate = name[:200 - len(suffix)] + suffix
    return candidate


def import_project(*, file: BinaryIO, size: int, session: Session, store: BlobStore, settings: Settings,
                   embedders: EmbedderPool, owner_id: int | None, filename: str = "") -> Project:
    """A new project from a project file or a model file, owned by `owner_id`; ProjectFileError (nothing kept)
    when anything is wrong. Rows are flushed, not committed: the caller commits, or rolls back on an error."""
    kind, archive = open_archive(file, size, settings)
    if kind is not None:
        return _import_model_file(kind, file, size, archive, filename, session=session, embedders=embedders,
                                  owner_id=owner_id)
    m = open_file(archive, settings)
    try:
        spec = get_spec(m.project.backbone)
    except BackboneUnavailable:
        raise ProjectFileError(f"the project uses the backbone {m.project.backbone!r}, which this server does not "
                               "know") from None
    if not spec.available:
        raise ProjectFileError(f"the project uses the backbone {m.project.backbone!r}, whose weights are not on "
                               "this server")
    cap = settings.project_file_max_unpacked_bytes
    states = {}
    for entry in m.backbones:
        states[entry.sha256] = _verified(archive, entry.path, entry.sha256, cap)
        _check_backbone_state(states[entry.sha256], entry.path, embedders.backbone(spec.name))
    weights = {}
    for entry in m.models:
        weights[entry.version] = _verified(archive, entry.path, entry.sha256, cap)
        _check_model_weights(weights[entry.version], entry, spec.feature_dim)

    for state in states.values():
        crud.store_backbone_weights(session=session, backbone=spec.name, state=state)
    project = Project(name=free_name(session, owner_id, m.project.name.strip()), backbone=spec.name,
                      owner_id=owner_id, created_at=m.project.created_at, base_digest=m.project.base_digest)
    session.add(project)
    session.flush()
    classes, ordered = {}, sorted(m.classes, key=lambda c: c.order)
    for entry in ordered:
        classes[entry.name] = crud.create_class(session=session, project_id=project.id, name=entry.name.strip())
    input_size = embedders.spec(project.features).preprocessing.input_size
    written: list[str] = []
    try:
        sample_ids = []
        for i, photo in enumerate(m.photos):
            data = _verified(archive, photo.path, photo.sha256, settings.max_upload_bytes)
            result = store_files([(photo.original_name or "unnamed", data)], session=session, store=store,
                                 settings=settings, class_id=classes[photo.class_].id, input_size=input_size,
                                 source=photo.source, burst_id=photo.burst_id)
            written.extend(s.key for s in result.added)
            if result.rejected:
                raise ProjectFileError(f"photo {i + 1} ({photo.path}, {photo.original_name!r}) is not a usable "
                                       f"image: {result.rejected[0]['error']}")
            result.added[0].created_at = photo.created_at
            sample_ids.append(result.added[0].id)
        _add_models(session, project, m, weights, [classes[c.name].id for c in ordered], dict(enumerate(sample_ids)))
    except BaseException:
        for key in written:
            store.delete(key)
        raise
    return project


def _import_model_file(kind: str, file: BinaryIO, size: int, archive: SafeZip | None, filename: str, *,
                       session: Session, embedders: EmbedderPool, owner_id: int | None) -> Project:
    if size > modelfile.MODEL_FILE_MAX_BYTES:
        raise ProjectFileError(f"the model file is {size / 1024**2:,.0f} MiB; at most "
                               f"{modelfile.MODEL_FILE_MAX_BYTES / 1024**2:,.0f} MiB are accepted", 413)
    try:
        rec = modelfile.recover(kind, data=file.read() if kind == "onnx" else None, archive=archive,
                                embedders=embedders)
    except ModelFileError as exc:
        raise ProjectFileError(f"this {kind} file cannot be opened as a project: {exc}") from None
    return modelfile.add_project(rec, filename=filename, session=session, embedders=embedders, owner_id=owner_id,
                                 free_name=free_name)


def _add_models(session: Session, project: Project, m: Manifest, weights: dict[int, bytes], class_ids: list[int],
                sample_ids: dict[int, int]) -> None:
    for entry in m.models:
        model = TrainedModel(
            project_id=project.id, version=entry.version, backbone=entry.backbone, features=entry.features,
            mode=entry.mode, labels=list(entry.labels),
            class_ids=[None if c is None else class_ids[c] for c in entry.classes],
            format_version=checkpoint.FORMAT_VERSION, weights=weights[entry.version],
            metrics=remap_rows(entry.metrics, sample_ids, "photo", "sample_id"),
            unknown_threshold=entry.unknown_threshold, unknown_threshold_calibrated=entry.unknown_threshold_calibrated,
            created_at=entry.created_at)
        session.add(model)
        session.flush()
        if entry.version == m.current_model:
            project.current_model_id = model.id
    session.flush()
