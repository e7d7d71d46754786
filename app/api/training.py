from __future__ import annotations

from fastapi import APIRouter, HTTPException

from app import access, crud
from app.access import Level
from app.api import errors
from app.api.deps import ActorDep, Id, ServicesDep, SessionDep
from app.schemas import JobCreated, JobOut, TrainRequest
from app.training import NotTrainable, check_trainable

# Every route names a project or job by id.
router = APIRouter(prefix="/api", tags=["training"], responses=errors.responses(404, 422))


def job_out(job) -> JobOut:
    out = JobOut.model_validate(job, from_attributes=True)
    # The model keeps the rows per validation photo (as many as photos): GET /api/models/{id}/predictions.
    out.metrics = {k: v for k, v in out.metrics.items() if k not in crud.PER_PHOTO}
    return out


@router.post("/projects/{project_id}/train", response_model=JobCreated, status_code=202,
             responses=errors.error(409, "not trainable yet, or a training job is already active"))
def train(project_id: Id, body: TrainRequest, session: SessionDep, services: ServicesDep, actor: ActorDep):
    project = access.project(session, actor, project_id, Level.EDIT)
    counts = crud.sample_counts(session=session, project_id=project_id)
    try:
        check_trainable({c.name: counts.get(c.id, 0) for c in project.classes if c.enabled},
                        switched_off=sum(not c.enabled for c in project.classes))
    except NotTrainable as exc:
        raise HTTPException(409, str(exc)) from None
    crud.lock_project(session=session, project_id=project_id)  # two web processes: one job, the other 409
    active = crud.active_job(session=session, project_id=project_id)
    if active is not None:
        raise HTTPException(409, "this project is already training: wait for it to finish, or cancel it")
    job = crud.create_job(session=session, project_id=project_id, kind="train",
                          params=body.model_dump(exclude_none=True))
    session.commit()
    services.worker.submit(job.id)
    return JobCreated(job_id=job.id)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: Id, session: SessionDep, actor: ActorDep):
    return job_out(access.job(session, actor, job_id))


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=JobOut,
             responses=errors.error(409, "the job has already finished"))
def cancel_job(job_id: Id, session: SessionDep, services: ServicesDep, actor: ActorDep):
    access.job(session, actor, job_id, Level.EDIT)
    if not services.worker.cancel(job_id):
        raise HTTPException(409, "the job has already finished")
    session.expire_all()
    return job_out(crud.get_job(session=session, job_id=job_id))


@router.get("/projects/{project_id}/jobs/latest", response_model=JobOut | None)
def latest_job(project_id: Id, session: SessionDep, actor: ActorDep):
    access.project(session, actor, project_id)
    job = crud.latest_job(session=session, project_id=project_id)
    return job_out(job) if job else None
