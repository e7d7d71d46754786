"""manifest.json: the schema of a project file. Strict: unknown keys and loose types are refused."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from app.projectfile import ProjectFileError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# A path inside the zip, as write.py makes them; safezip.py checks the zip's own names more broadly.
EntryPath = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                             pattern=r"^[a-z0-9]+(/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$")]
BurstId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Backbone = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, protected_namespaces=(), allow_inf_nan=False)


class ProjectEntry(Strict):
    name: str = Field(min_length=1, max_length=200)
    backbone: Backbone
    created_at: datetime
    # "Start from another project's model": the fine-tuned backbone it extracts features with (see backbones).
    base_digest: Sha256 | None


class ClassEntry(Strict):
    name: str = Field(min_length=1, max_length=100)
    order: int = Field(ge=0)


class PhotoEntry(Strict):
    path: EntryPath
    class_: str = Field(alias="class", min_length=1, max_length=100)  # the class's name
    source: Literal["upload", "webcam"]
    burst_id: BurstId | None
    original_name: str = Field(max_length=255)
    sha256: Sha256
    created_at: datetime


class BackboneEntry(Strict):
    """A fine-tuned backbone's state dict; its sha256 is also its digest in features keys ("name@digest")."""

    backbone: Backbone
    path: EntryPath
    sha256: Sha256


class ModelEntry(Strict):
    version: int = Field(ge=1, le=2**31 - 1)
    mode: str = Field(min_length=1, max_length=16)
    backbone: Backbone
    features: str = Field(min_length=1, max_length=200)
    labels: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(min_length=1)
    # Per label, the `order` of the class it was trained on; null when that class was deleted since.
    classes: list[int | None]
    unknown_threshold: float | None = Field(ge=-1, le=1)
    unknown_threshold_calibrated: float | None = Field(ge=-1, le=1)
    # As the API shows them, except that evaluation rows name a photo by its index in `photos` ("photo").
    metrics: dict[str, Any]
    created_at: datetime
    path: EntryPath  # the checkpoint (app/ml/checkpoint.py)
    sha256: Sha256


class Manifest(Strict):
    format_version: Literal[1]
    snapclass_version: str = Field(max_length=50)
    exported_at: datetime
    project: ProjectEntry
    classes: list[ClassEntry]
    photos: list[PhotoEntry]
    backbones: list[BackboneEntry]
    models: list[ModelEntry]
    current_model: int | None  # the version of the project's current model, one of `models`


def parse(raw: bytes) -> Manifest:
    """The manifest, or ProjectFileError. The format version is judged first: a newer file's other keys may
    differ, and "upgrade" is the useful answer then."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProjectFileError(f"{MANIFEST} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ProjectFileError(f"{MANIFEST} is not a JSON object")
    version = data.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise ProjectFileError(f"this project file was made by a newer snapclass (format {version}); this server "
                               f"reads format {FORMAT_VERSION}: upgrade snapclass to open it")
    try:
        return Manifest.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'manifest'}: {e['msg']}"
                             for e in exc.errors()[:5])
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise ProjectFileError(f"{MANIFEST} does not match the project file format: {problems}{more}") from None
