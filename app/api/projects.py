from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from app import access, crud
from app.access import Level
from app.api import errors
from app.api.deps import ActorDep, Id, ServicesDep, SessionDep
from app.api.views import project_detail, project_out
from app.ml.backbones import get_spec
from app.schemas import ProjectCreate, ProjectDetail, ProjectOut, ProjectRename

router = APIRouter(prefix="/api/projects", tags=["projects"])

# The routes that name a project by id.
BY_ID = errors.responses(404, 422)


@router.get("", response_model=list[ProjectOut])
def list_projects(session: SessionDep, actor: ActorDep):
    """The projects you own, are a member of, or (as an admin) all of them."""
    return [project_out(session, p) for p in access.visible_projects(session, actor)]


@router.post("", response_model=ProjectDetail, status_code=201, responses=errors.responses(422))
def create_project(body: ProjectCreate, session: SessionDep, services: ServicesDep, actor: ActorDep):
    base = None
    if body.base_model_id is not None:
        try:
            base = access.model(session, actor, body.base_model_id)
        except crud.NotFound:
            raise HTTPException(422, f"base model {body.base_model_id} does not exist") from None
        if body.backbone and body.backbone != base.backbone:
            raise HTTPException(422, f"base model {base.id} uses {base.backbone!r}, not {body.backbone!r}")
    backbone = base.backbone if base else body.backbone or services.settings.default_backbone
    spec = get_spec(backbone)  # unknown name -> 422 via the BackboneUnavailable handler
    if not spec.available:
        raise HTTPException(422, f"backbone {backbone!r} has no weights on this server")
    project = crud.create_project(session=session, name=body.name, backbone=backbone, base_model=base,
                                  owner_id=access.new_project_owner(session, actor), classes=body.classes)
    return project_detail(session, project, actor)


@router.get("/{project_id}", response_model=ProjectDetail, responses=BY_ID)
def get_project(project_id: Id, session: SessionDep, actor: ActorDep):
    return project_detail(session, access.project(session, actor, project_id), actor)


@router.patch("/{project_id}", response_model=ProjectDetail, responses=BY_ID)
def rename_project(project_id: Id, body: ProjectRename, session: SessionDep, actor: ActorDep):
    project = access.project(session, actor, project_id, Level.OWN)
    project.name = body.name
    session.flush()
    return project_detail(session, project, actor)


@router.delete("/{project_id}", status_code=204, responses=BY_ID)
def delete_project(project_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    project = access.project(session, actor, project_id, Level.OWN)
    job = crud.active_job(session=session, project_id=project_id)
    if job is not None:
        services.worker.cancel(job.id)
    keys = crud.project_sample_keys(session=session, project_id=project_id)
    session.delete(project)
    session.flush()
    crud.prune_backbone_weights(session=session)
    session.commit()
    services.models.forget(project_id)
    for key in keys:  # after the commit: a failed delete leaves files, never rows without files
        services.store.delete(key)
    return Response(status_code=204)
