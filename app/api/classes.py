from __future__ import annotations

import zipfile
from collections.abc import Iterator
from urllib.parse import quote

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from app import access, crud, trash
from app.access import Level
from app.api import errors
from app.api.deps import ActorDep, Id, ServicesDep, SessionDep
from app.api.views import class_out
from app.schemas import ClassCreate, ClassOut, ClassUpdate
from app.storage import ORIGINAL, BlobStore

# Every route names a project or class by id.
router = APIRouter(prefix="/api", tags=["classes"], responses=errors.responses(404, 422))

DUPLICATE = errors.error(409, "a class of that name exists in the project (names compare case-insensitively)")
UNDO_HEADER = {"X-Undo": {"description": "POST this path (within a few minutes) to undo the delete",
                          "schema": {"type": "string"}}}


def _out(session, image_class) -> ClassOut:
    counts = crud.sample_counts(session=session, project_id=image_class.project_id)
    return class_out(image_class, counts.get(image_class.id, 0))


def undo_response(entry) -> Response:
    return Response(status_code=204, headers={"X-Undo": f"/api/trash/{entry.id}/restore"})


@router.post("/projects/{project_id}/classes", response_model=ClassOut, status_code=201,
             responses=DUPLICATE)
def create_class(project_id: Id, body: ClassCreate, session: SessionDep, actor: ActorDep):
    access.project(session, actor, project_id, Level.EDIT)
    trash.release_class_name(session=session, project_id=project_id, name=body.name)
    return _out(session, crud.create_class(session=session, project_id=project_id, name=body.name))


@router.patch("/classes/{class_id}", response_model=ClassOut, responses=DUPLICATE)
def update_class(class_id: Id, body: ClassUpdate, session: SessionDep, actor: ActorDep):
    """Rename it, or switch "use in training" on or off (`{"enabled": false}`), or both."""
    image_class = access.image_class(session, actor, class_id, Level.EDIT)
    if body.name is not None:
        trash.release_class_name(session=session, project_id=image_class.project_id, name=body.name)
        crud.rename_class(session=session, class_id=class_id, name=body.name)
    if body.enabled is not None:
        crud.set_class_enabled(session=session, class_id=class_id, enabled=body.enabled)
    return _out(session, image_class)


@router.delete("/classes/{class_id}", status_code=204,
               responses={204: {"description": "deleted; undo with the X-Undo header's path", "headers": UNDO_HEADER}})
def delete_class(class_id: Id, session: SessionDep, actor: ActorDep):
    """The class and its photos go to the trash for a few minutes: POST the X-Undo path to put them back."""
    image_class = access.image_class(session, actor, class_id, Level.EDIT)
    entry = trash.trash_class(session=session, image_class=image_class)
    session.commit()
    return undo_response(entry)


def zip_names(filenames: list[str]) -> list[str]:
    """Names for the zip: the uploader's file name without any folder, made unique ("a.jpg", "a (2).jpg")."""
    seen: set[str] = set()
    out = []
    for i, raw in enumerate(filenames, 1):
        base = raw.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".") or f"photo-{i}"
        stem, dot, ext = base.rpartition(".") if "." in base else (base, "", "")
        name, n = base, 1
        while name.casefold() in seen:
            n += 1
            name = f"{stem} ({n}){dot}{ext}"
        seen.add(name.casefold())
        out.append(name)
    return out


class _Chunks:
    """A write-only stream that hands back what was written: the zip is sent as it is made, never on disk."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def _zip_stream(store: BlobStore, files: list[tuple[str, str]]) -> Iterator[bytes]:
    sink = _Chunks()
    # Stored, not deflated: photos are compressed already, and the stream stays as fast as the disk.
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, name in files:
            try:
                data = store.read(key, ORIGINAL)
            except FileNotFoundError:  # deleted (and purged) while the zip was being sent
                continue
            archive.writestr(name, data)
            yield sink.take()
    yield sink.take()


@router.get("/classes/{class_id}/photos.zip", response_class=StreamingResponse, responses={
    200: {"content": {"application/zip": {}}, "description": "the class's original photos, under their file "
          "names (made unique)"}})
def download_photos(class_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    image_class = access.image_class(session, actor, class_id)
    samples = crud.list_samples(session=session, class_id=class_id)
    files = list(zip([s.key for s in samples], zip_names([s.filename for s in samples]), strict=True))
    name = f"{image_class.name}.zip"
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\/;' else "_" for c in name)
    return StreamingResponse(_zip_stream(services.store, files), media_type="application/zip", headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"})
