from __future__ import annotations

from fastapi import APIRouter, Response

from app import access, crud
from app.access import Level
from app.api import errors
from app.api.deps import ActorDep, Id, ServicesDep, SessionDep
from app.api.views import class_out
from app.schemas import ClassCreate, ClassOut

# Every route names a project or class by id.
router = APIRouter(prefix="/api", tags=["classes"], responses=errors.responses(404, 422))

DUPLICATE = errors.error(409, "a class of that name exists in the project (names compare case-insensitively)")


def _out(session, image_class) -> ClassOut:
    counts = crud.sample_counts(session=session, project_id=image_class.project_id)
    return class_out(image_class, counts.get(image_class.id, 0))


@router.post("/projects/{project_id}/classes", response_model=ClassOut, status_code=201,
             responses=DUPLICATE)
def create_class(project_id: Id, body: ClassCreate, session: SessionDep, actor: ActorDep):
    access.project(session, actor, project_id, Level.EDIT)
    return _out(session, crud.create_class(session=session, project_id=project_id, name=body.name))


@router.patch("/classes/{class_id}", response_model=ClassOut, responses=DUPLICATE)
def rename_class(class_id: Id, body: ClassCreate, session: SessionDep, actor: ActorDep):
    access.image_class(session, actor, class_id, Level.EDIT)
    return _out(session, crud.rename_class(session=session, class_id=class_id, name=body.name))


@router.delete("/classes/{class_id}", status_code=204)
def delete_class(class_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    image_class = access.image_class(session, actor, class_id, Level.EDIT)
    keys = crud.class_sample_keys(session=session, class_id=class_id)
    session.delete(image_class)
    session.commit()
    for key in keys:
        services.store.delete(key)
    return Response(status_code=204)
