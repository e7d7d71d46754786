"""A whole project as one file: "Save project to a file" and "Open a project file" (app/projectfile does the work)."""

from __future__ import annotations

import os
import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from app import access
from app.api import errors
from app.api.deps import ActorDep, Id, ServicesDep, SessionDep
from app.api.views import project_detail
from app.projectfile import ProjectFileError
from app.projectfile.read import import_project
from app.projectfile.write import slug, write_project
from app.schemas import ProjectDetail

router = APIRouter(prefix="/api/projects", tags=["projects"])


class WhichModels(str, Enum):
    current = "current"
    all = "all"
    none = "none"


EXPORT_DOC = """The whole project as one zip file, to keep or to open on another snapclass server.

`manifest.json` holds `format_version`, the project, its classes, and per photo its path in the zip, class,
source, burst, original name, sha256 and time; `photos/` the original photo bytes; `models/` and `backbones/`
the chosen models' checkpoints and fine-tuned backbones (with their metrics, labels and thresholds in the
manifest). `models`: the `current` model (default), `all` versions, or `none`.
"""

IMPORT_DOC = """A project file made by `GET /api/projects/{id}/export` becomes a new project of yours, with the same
classes, photos and models: it predicts at once, exactly as the original did. A name you already use gets
" (2)", " (3)"…

The file is trusted in nothing: it is refused whole, with nothing stored, when it is not a zip, when an entry's
path escapes or is absolute, an entry is a link or appears twice, an entry is not in the manifest or one the
manifest lists is missing, a size, count or compression ratio is over the server's limits, the manifest does not
match the format (or is of a newer one), a sha256 does not match, a photo does not decode, or the weights do not
load.

A model file downloaded from snapclass (`onnx` or `pt2`, not `onnx-int8` or `torchscript`) becomes a project
too: one class per label, and the file's network as its current model, so predict, live, share and download
work at once; add photos and train to continue from it (a fine-tuned backbone in the file becomes the
project's base). The file is read, never run as code: pt2 weights are read from the archive as raw tensors
(`torch.export.load` would unpickle), and an ONNX file's rebuilt network is checked against the file itself in
ONNX Runtime. The project is named after the model's project (or the file), with " (2)"… on a clash.
"""


def _unlink(path: str) -> None:
    Path(path).unlink(missing_ok=True)


@router.get("/{project_id}/export", response_class=FileResponse, description=EXPORT_DOC, responses={
    200: {"content": {"application/zip": {}}, "description": "the project file, `<name>.snapclass.zip`"}})
def export_project(project_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep,
                   models: Annotated[WhichModels, Query(description="which model versions to include")]
                   = WhichModels.current):
    project = access.project(session, actor, project_id)
    tmp_dir = services.settings.cache_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="project-", suffix=".zip", dir=tmp_dir)
    os.close(fd)
    try:  # a sync route runs in the thread pool: building the zip keeps off the event loop
        write_project(session=session, store=services.store, project=project, which=models.value, path=path)
    except BaseException:
        _unlink(path)
        raise
    return FileResponse(path, media_type="application/zip", filename=f"{slug(project.name)}.snapclass.zip",
                        background=BackgroundTask(_unlink, path))


@router.post("/import", response_model=ProjectDetail, status_code=201, description=IMPORT_DOC, responses={
    **errors.error(400, "not a zip file"),
    **errors.error(413, "the file, an entry, the entry count, the unpacked size or a compression ratio is over "
                         "the limits"),
    **errors.error(422, "the file is not a valid snapclass project or model file (the detail says why); nothing "
                         "stored")})
def import_project_file(file: Annotated[UploadFile, File(
                            description="a project file saved by export, or a model file downloaded as onnx or pt2")],
                        session: SessionDep, services: ServicesDep, actor: ActorDep):
    file.file.seek(0, os.SEEK_END)
    size = file.file.tell()
    file.file.seek(0)
    try:
        project = import_project(file=file.file, size=size, session=session, store=services.store,
                                 settings=services.settings, embedders=services.embedders,
                                 owner_id=access.new_project_owner(session, actor), filename=file.filename or "")
    except ProjectFileError as exc:
        session.rollback()
        raise HTTPException(exc.status, str(exc)) from None
    except BaseException:
        session.rollback()
        raise
    session.commit()
    return project_detail(session, project, actor)
