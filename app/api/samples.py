from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile
from fastapi.responses import JSONResponse

from app import access, crud, trash
from app.access import Level
from app.api import errors
from app.api.classes import UNDO_HEADER, undo_response
from app.api.deps import MAX_ID, ActorDep, Id, ServicesDep, SessionDep
from app.api.views import sample_out
from app.headers import UPLOAD_CSP
from app.schemas import SampleOut, UploadOut, UploadRefusedOut
from app.storage import ORIGINAL, THUMB, WORK
from app.uploads import store_files

# Every route names a class or sample by id.
router = APIRouter(prefix="/api", tags=["samples"], responses=errors.responses(404, 422))

MEDIA = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp",
         "BMP": "image/bmp", "TIFF": "image/tiff"}


def read_upload(upload: UploadFile, limit: int) -> bytes:
    # One byte past the limit is enough to know it is too big, without reading a huge body.
    return upload.file.read(limit + 1)


@router.post(
    "/classes/{class_id}/samples", response_model=UploadOut, status_code=201,
    responses={**errors.error(413, "more files than one upload may hold"),
               **errors.error(422, "no file was a valid image (nothing was stored), or the form does not match",
                              UploadRefusedOut | errors.InvalidRequestOut)},
)
def upload_samples(
    class_id: Id,
    session: SessionDep,
    services: ServicesDep,
    actor: ActorDep,
    files: Annotated[list[UploadFile], File(description="one or many images", min_length=1)],
    burst_id: Annotated[str | None, Form(max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                                         description="frames of one webcam press share one")] = None,
    source: Annotated[str, Form(pattern="^(upload|webcam)$")] = "upload",
):
    settings = services.settings
    image_class = access.image_class(session, actor, class_id, Level.EDIT)
    input_size = services.embedders.spec(image_class.project.features).preprocessing.input_size
    if len(files) > settings.max_files_per_upload:
        raise HTTPException(413, f"at most {settings.max_files_per_upload} files per upload")
    data = [(f.filename or "unnamed", read_upload(f, settings.max_upload_bytes)) for f in files]
    result = store_files(data, session=session, store=services.store, settings=settings, class_id=class_id,
                         input_size=input_size, source=source, burst_id=burst_id)
    if not result.added:
        session.rollback()
        return JSONResponse(status_code=422, content={
            "detail": "no valid image in the upload: " + "; ".join(
                f"{r['filename']}: {r['error']}" for r in result.rejected),
            "rejected": result.rejected,
        })
    session.commit()
    return UploadOut(added=[sample_out(s) for s in result.added], rejected=result.rejected)


MAX_PAGE = 500
NEXT_LINK = {"Link": {"description": "with `limit`, when more photos follow: `<PATH>; rel=\"next\"`, the path on this "
                      "server of the next page", "schema": {"type": "string"}}}


@router.get("/classes/{class_id}/samples", response_model=list[SampleOut],
            responses={200: {"description": "the photos", "headers": NEXT_LINK}})
def list_samples(
    class_id: Id, session: SessionDep, actor: ActorDep, response: Response,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="a page of at most this many, newest "
                                       "first; without it, every photo of the class, oldest first")] = None,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID, description="with `limit`: only photos with a lower id "
                                        "(the last id of the page before; it need not exist any more)")] = None,
):
    """The class's photos. A big class a page at a time: `?limit=48`, then the URL in the answer's `Link`
    header (rel="next") until there is none. Pages go by id (keyset), so photos added or deleted meanwhile
    neither repeat nor skip one; new photos have higher ids than any page already read."""
    access.image_class(session, actor, class_id)
    if limit is None:
        if before is not None:
            raise HTTPException(422, "before= needs limit=: say how many photos a page holds (1 to 500)")
        return [sample_out(s) for s in crud.list_samples(session=session, class_id=class_id)]
    samples, more = crud.sample_page(session=session, class_id=class_id, limit=limit, before=before)
    if more:
        after = f"/api/classes/{class_id}/samples?limit={limit}&before={samples[-1].id}"
        response.headers["Link"] = f'<{after}>; rel="next"'
    return [sample_out(s) for s in samples]


DELETED = {204: {"description": "deleted; undo with the X-Undo header's path", "headers": UNDO_HEADER}}
MAX_BULK = 500


@router.delete("/samples/{sample_id}", status_code=204, responses=DELETED)
def delete_sample(sample_id: Id, session: SessionDep, actor: ActorDep):
    """The photo goes to the trash for a few minutes: POST the X-Undo path to put it back."""
    sample = access.sample(session, actor, sample_id, Level.EDIT)
    entry = trash.trash_samples(session=session, project_id=sample.image_class.project_id, samples=[sample])
    session.commit()
    return undo_response(entry)


@router.delete("/samples", status_code=204, responses={**DELETED, **errors.error(403)})
def delete_samples(session: SessionDep, actor: ActorDep,
                   id: Annotated[list[Id], Query(min_length=1, max_length=MAX_BULK,
                                                 description="the photos, all of one project")]):
    """Several photos at once (`?id=3&id=5`): one trash entry, so one undo puts them all back."""
    samples = crud.get_samples(session=session, sample_ids=id)
    projects = {access.sample(session, actor, s.id, Level.EDIT).image_class.project_id for s in samples}
    if len(projects) > 1:
        raise HTTPException(422, "the photos are in different projects: delete them one project at a time")
    entry = trash.trash_samples(session=session, project_id=projects.pop(), samples=samples)
    session.commit()
    return undo_response(entry)


def _file(services, key: str, kind: str, media: str) -> Response:
    try:
        data = services.store.read(key, kind)
    except FileNotFoundError:
        raise HTTPException(404, "image file missing") from None
    # Keys are never reused, so the bytes behind a URL never change. The uploads are decoded and re-checked,
    # but should one ever be a document (SVG, HTML), the sandbox keeps it from running as our origin.
    return Response(data, media_type=media, headers={
        "Cache-Control": "private, max-age=31536000, immutable",
        "Content-Security-Policy": UPLOAD_CSP, "Content-Disposition": "inline"})


@router.get("/samples/{sample_id}/image", response_class=Response,
            responses={200: {"content": {"image/*": {}}, "description": "the original upload"}})
def sample_image(sample_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    sample = access.sample(session, actor, sample_id)
    return _file(services, sample.key, ORIGINAL, MEDIA.get(sample.original_format, "application/octet-stream"))


@router.get("/samples/{sample_id}/thumbnail", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def sample_thumbnail(sample_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    sample = access.sample(session, actor, sample_id)
    return _file(services, sample.key, THUMB, "image/jpeg")


@router.get("/samples/{sample_id}/work", response_class=Response, include_in_schema=False)
def sample_work(sample_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    sample = access.sample(session, actor, sample_id)
    return _file(services, sample.key, WORK, "image/jpeg")
