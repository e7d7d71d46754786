"""Model versions: every training run keeps its model and metrics; any version can be made current."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from app import access, crud
from app.access import Level
from app.api import errors
from app.api.deps import MAX_ID, ActorDep, Id, ServicesDep, SessionDep
from app.api.views import model_brief, model_out
from app.schemas import ExportOut, ModelOut, ModelUpdate, PredictionRow, PredictionsOut

# Every route names a project or model by id.
router = APIRouter(prefix="/api", tags=["models"], responses=errors.responses(404, 422))

FULL = Annotated[bool, Query(description="also the rows per validation photo (`val_predictions`, `misclassified`): "
                             "as many as there are photos, so a big project's answer is megabytes; "
                             "GET /api/models/{id}/predictions pages through them")]


@router.get("/projects/{project_id}/models", response_model=list[ModelOut])
def list_models(project_id: Id, session: SessionDep, actor: ActorDep, full: FULL = False):
    """Newest first, each with its metrics (`full=true` adds the rows per validation photo)."""
    project = access.project(session, actor, project_id)
    models = crud.model_summaries(session=session, project_id=project_id)
    metrics = crud.model_metrics(session=session, model_ids=[m.id for m in models], per_photo=full)
    return [model_out(m, project.current_model_id, metrics[m.id]) for m in models]


@router.get("/models/{model_id}", response_model=ModelOut)
def get_model(model_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep, full: FULL = False):
    """One version with its whole evaluation: per-class accuracy, the confusion matrix, history per epoch,
    learning curves; and `exports`, every download format with where its build stands and, once built, its
    parity against the served model. A GET builds nothing (all formats take a minute): POST …/exports or a
    download does. The photos behind the matrix and the mistakes: GET …/predictions, a page at a time."""
    model = _light_model(session, actor, model_id)
    metrics = crud.model_metrics(session=session, model_ids=[model.id], per_photo=full)[model.id]
    out = model_out(model, model.project.current_model_id, metrics)
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
    return model_brief(session, model, model.id)


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
    return model_brief(session, model, model.project.current_model_id)


@router.delete("/models/{model_id}", status_code=204, responses=errors.error(409, "it is the current model"))
def delete_model(model_id: Id, session: SessionDep, actor: ActorDep):
    access.model(session, actor, model_id, Level.EDIT)
    crud.delete_model(session=session, model_id=model_id)
    crud.prune_backbone_weights(session=session)
    return Response(status_code=204)


LabelIndex = Annotated[int | None, Query(ge=0, le=MAX_ID, description="a class, as an index into the model's labels")]


@router.get("/models/{model_id}/predictions", response_model=PredictionsOut)
def list_predictions(
    model_id: Id, session: SessionDep, actor: ActorDep,
    true: LabelIndex = None,
    predicted: LabelIndex = None,
    wrong: Annotated[bool, Query(description="only the mistakes (answer not the true class)")] = False,
    group: Annotated[Literal["burst"] | None, Query(
        description="burst: the frames of one webcam recording with the same class and answer come as one row, "
        "the worst, with `similar` saying how many it stands for")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
):
    """The validation photos behind the evaluation, worst first (highest loss), a page at a time: a
    confusion-matrix cell (`true` and `predicted`), a class's photos (`true`), or the mistakes (`wrong=true`).
    With cross-validation every photo has a row, so a big project has as many rows as photos."""
    model = _light_model(session, actor, model_id)
    for name, index in (("true", true), ("predicted", predicted)):
        if index is not None and index >= len(model.labels):
            raise HTTPException(422, f"{name}={index}: this model has {len(model.labels)} classes (0 to "
                                     f"{len(model.labels) - 1})")
    rows = [r for r in crud.validation_rows(session=session, model_id=model.id) if _usable(r)
            and (true is None or r["true"] == true) and (predicted is None or r["predicted"] == predicted)
            and (not wrong or r["true"] != r["predicted"])]
    rows.sort(key=lambda r: (-r["loss"], r.get("sample_id") is None, r.get("sample_id") or 0))
    photos = len(rows)
    tiles = _by_burst(rows) if group == "burst" else [(r, 1) for r in rows]
    page = [PredictionRow(**{k: r.get(k) for k in FIELDS}, similar=n) for r, n in tiles[offset:offset + limit]]
    return PredictionsOut(total=len(tiles), photos=photos, rows=page)


def _light_model(session, actor, model_id: int):
    """access.model, with the row loaded without its weights and metrics (read on access, if at all): held
    here, as the session's identity map holds rows only while someone does, so access.model finds it."""
    light = crud.model_summary(session=session, model_id=model_id)
    if light is None:
        raise crud.NotFound(f"model {model_id} not found")
    return access.model(session, actor, model_id)


FIELDS = ("sample_id", "true", "predicted", "loss", "score", "burst_id")


def _usable(r) -> bool:
    """A row as app.training writes it; anything else (an odd project file's) is left out. Checked by hand,
    and only the page validated: 20,000 rows through pydantic take longer than the whole request should."""
    return (isinstance(r, dict) and type(r.get("true")) is int and type(r.get("predicted")) is int
            and all(type(r.get(k)) in (int, float) and math.isfinite(r[k]) for k in ("loss", "score"))
            and (r.get("sample_id") is None or type(r.get("sample_id")) is int)
            and (r.get("burst_id") is None or isinstance(r.get("burst_id"), str)))


def _by_burst(rows: list[dict]) -> list[tuple[dict, int]]:
    """One row per recording and (class, answer), with how many it stands for: the first in loss order, the
    worst, stands for the rest."""
    counts: dict[tuple, int] = {}
    first = []
    for r in rows:
        key = (r["burst_id"], r["true"], r["predicted"]) if r.get("burst_id") is not None else None
        if key is None:
            first.append((r, None))
        elif key not in counts:
            counts[key] = 1
            first.append((r, key))
        else:
            counts[key] += 1
    return [(r, counts[key] if key else 1) for r, key in first]
