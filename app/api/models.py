"""Model versions: every training run keeps its model and metrics; any version can be made current."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app import access, crud
from app.access import Level
from app.api import errors
from app.api.deps import ActorDep, Id, ServicesDep, SessionDep
from app.api.views import model_out
from app.schemas import ExportOut, ModelOut, ModelUpdate

# Every route names a project or model by id.
router = APIRouter(prefix="/api", tags=["models"], responses=errors.responses(404, 422))


@router.get("/projects/{project_id}/models", response_model=list[ModelOut])
def list_models(project_id: Id, session: SessionDep, actor: ActorDep, full: bool = False):
    """Newest first, each with its metrics (`full=true` adds per-image validation rows)."""
    project = access.project(session, actor, project_id)
    return [model_out(m, project.current_model_id, full=full)
            for m in crud.list_models(session=session, project_id=project_id)]


@router.get("/models/{model_id}", response_model=ModelOut)
def get_model(model_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    """One version with its whole evaluation: per-class accuracy, confusion matrix with the validation
    rows behind it, history per epoch, misclassified images by loss, learning curves; and `exports`, every
    download format with where its build stands and, once built, its parity against the served model. A GET
    builds nothing (all formats take a minute): POST …/exports or a download does."""
    model = access.model(session, actor, model_id)
    out = model_out(model, model.project.current_model_id)
    out.exports = [ExportOut(**e) for e in services.exports.status(model, model.project.name)]
    return out


@router.post("/models/{model_id}/exports", response_model=list[ExportOut], status_code=202)
def build_exports(model_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    """Have every download format of this version built and checked in the background, one file at a time,
    skipping what is built, waiting or being built (asking twice queues nothing more; a failed build is tried
    again). Anyone who may download may ask. The answer is where each format stands now; GET
    /api/models/{id} `exports` follows the builds."""
    model = access.model(session, actor, model_id)
    services.exports.request(model)
    return [ExportOut(**e) for e in services.exports.status(model, model.project.name)]


@router.post("/projects/{project_id}/models/{model_id}/activate", response_model=ModelOut)
def activate_model(project_id: Id, model_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    """Make this version the project's current model (prediction, live page and downloads use it)."""
    access.project(session, actor, project_id, Level.EDIT)
    model = crud.set_current_model(session=session, project_id=project_id, model_id=model_id)
    session.commit()
    services.models.invalidate(project_id)
    return model_out(model, model.id, full=False)


@router.patch("/models/{model_id}", response_model=ModelOut)
def update_model(model_id: Id, body: ModelUpdate, session: SessionDep, services: ServicesDep, actor: ActorDep):
    """Adjust the "none of these" threshold; it is carried into downloads made afterwards."""
    model = access.model(session, actor, model_id, Level.EDIT)
    if body.reset_unknown_threshold:
        model.unknown_threshold = model.unknown_threshold_calibrated
    elif body.unknown_threshold is not None:
        model.unknown_threshold = body.unknown_threshold
    session.commit()
    services.models.invalidate(model.project_id)
    return model_out(model, model.project.current_model_id, full=False)


@router.delete("/models/{model_id}", status_code=204, responses=errors.error(409, "it is the current model"))
def delete_model(model_id: Id, session: SessionDep, actor: ActorDep):
    access.model(session, actor, model_id, Level.EDIT)
    crud.delete_model(session=session, model_id=model_id)
    crud.prune_backbone_weights(session=session)
    return Response(status_code=204)
