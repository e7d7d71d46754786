"""Share links: the owner turns a project's public page on or off; anyone with the link may try the model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, Response, UploadFile

from app import access, sharing
from app.access import Level
from app.api import errors
from app.api.deps import ActorDep, Id, ServicesDep, SessionDep
from app.api.predict import NO_MODEL, answer_upload
from app.schemas import PredictOut, ShareOut

router = APIRouter(tags=["sharing"])


def _url(request: Request, token: str | None) -> str | None:
    return str(request.base_url).rstrip("/") + sharing.share_path(token) if token else None


@router.post("/api/projects/{project_id}/share", response_model=ShareOut, status_code=201)
def share(project_id: Id, request: Request, session: SessionDep, actor: ActorDep):
    """Make (or give again) the project's public, read-only page: anyone with the URL can try its current
    model on a photo or the webcam, without an account. Owner or admin only."""
    project = access.project(session, actor, project_id, Level.OWN)
    return ShareOut(url=_url(request, sharing.enable(session=session, project=project)))


@router.get("/api/projects/{project_id}/share", response_model=ShareOut)
def get_share(project_id: Id, request: Request, session: SessionDep, actor: ActorDep):
    """The share URL, or null when the project is not shared. Owner or admin only."""
    project = access.project(session, actor, project_id, Level.OWN)
    return ShareOut(url=_url(request, project.share_token))


@router.delete("/api/projects/{project_id}/share", status_code=204)
def unshare(project_id: Id, session: SessionDep, actor: ActorDep):
    """Revoke the link: its URL answers 404 from now on."""
    sharing.disable(session=session, project=access.project(session, actor, project_id, Level.OWN))
    return Response(status_code=204)


@router.post("/s/{token}/predict", response_model=PredictOut,
             responses={**NO_MODEL, **errors.error(404, "no such share link (or revoked)")})
def shared_predict(token: str, file: Annotated[UploadFile, File()], session: SessionDep, services: ServicesDep):
    """Like `POST /api/projects/{id}/predict`, for anyone holding the share link; no login."""
    project_id = sharing.shared_model(session=session, token=token).project_id
    session.close()
    return answer_upload(services, project_id, file)
