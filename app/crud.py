"""Data functions: keyword-only, a Session passed in. No HTTP, no torch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
from sqlalchemy import JSON, case, cast, delete, func, select, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, defer, joinedload

from app import changes
from app.colors import next_color
from app.models import (
    BackboneWeights,
    Embedding,
    ImageClass,
    Job,
    Project,
    Sample,
    TrainedModel,
    TrashEntry,
    utcnow,
)
from app.names import name_key, normalize_name

ACTIVE = ("queued", "running")
# The evaluation's rows per validation photo, in TrainedModel.metrics (see app.training.evaluation).
PER_PHOTO = ("val_predictions", "misclassified")


class NotFound(LookupError):
    pass


class Conflict(RuntimeError):
    pass


# --- projects ---


def list_projects(*, session: Session) -> Sequence[Project]:
    return session.scalars(select(Project).order_by(Project.id.desc())).all()


def get_project(*, session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found")
    return project


def create_project(*, session: Session, name: str, backbone: str, base_model: TrainedModel | None = None,
                   owner_id: int | None = None, classes: Sequence[str] = ()) -> Project:
    """A new project, with empty `classes`; with `base_model`, it extracts features with that model's backbone."""
    project = Project(name=name, backbone=backbone, owner_id=owner_id)
    if base_model is not None:
        project.backbone = base_model.backbone
        project.base_model_id = base_model.id
        project.base_digest = base_model.features.partition("@")[2] or None
    session.add(project)
    session.flush()
    for class_name in classes:
        create_class(session=session, project_id=project.id, name=class_name)
    session.refresh(project, ["classes"])
    return project


def sample_counts(*, session: Session, project_id: int) -> dict[int, int]:
    rows = session.execute(
        select(ImageClass.id, func.count(Sample.id))
        .outerjoin(Sample, Sample.class_id == ImageClass.id)
        .where(ImageClass.project_id == project_id)
        .group_by(ImageClass.id)
    )
    return {cid: n for cid, n in rows}


def project_sample_keys(*, session: Session, project_id: int) -> list[str]:
    """Every photo file of the project, those waiting in its trash included."""
    keys = list(session.scalars(
        select(Sample.key).join(ImageClass).where(ImageClass.project_id == project_id)
    ))
    return keys + trashed_keys(session=session, project_id=project_id)


def trashed_keys(*, session: Session, project_id: int | None = None) -> list[str]:
    query = select(TrashEntry.keys)
    if project_id is not None:
        query = query.where(TrashEntry.project_id == project_id)
    return [key for keys in session.scalars(query) for key in keys]


# --- classes ---


def get_class(*, session: Session, class_id: int) -> ImageClass:
    # With its project in the same SELECT: loaded later, it could be gone (deleted meanwhile) and read as None.
    image_class = session.get(ImageClass, class_id, options=[joinedload(ImageClass.project, innerjoin=True)])
    if image_class is None:
        raise NotFound(f"class {class_id} not found")
    return image_class


def _check_class_name(session: Session, project_id: int, name: str, exclude: int | None = None) -> None:
    """Names are compared case-insensitively (in Python: SQL's lower() knows only ASCII); a project has few
    classes. Rows from before names were normalized are normalized here too, so they clash as they look."""
    key = name_key(name)
    rows = session.execute(select(ImageClass.id, ImageClass.name).where(ImageClass.project_id == project_id))
    for cid, other in rows:
        if cid != exclude and name_key(_normalized(other)) == key:
            raise Conflict(f"a class named {other!r} already exists in this project")


def check_class_name(*, session: Session, project_id: int, name: str) -> None:
    """Raises Conflict when a class of the project already has that name (compared as _check_class_name does)."""
    _check_class_name(session, project_id, name)


def _normalized(name: str) -> str:
    try:
        return normalize_name(name)
    except ValueError:  # an old row holding a control character: compare it as it is
        return name


def create_class(*, session: Session, project_id: int, name: str) -> ImageClass:
    get_project(session=session, project_id=project_id)
    lock_project(session=session, project_id=project_id)  # PostgreSQL: names are checked one request at a time
    _check_class_name(session, project_id, name)
    taken = session.scalars(select(ImageClass.color).where(ImageClass.project_id == project_id))
    image_class = ImageClass(project_id=project_id, name=name, color=next_color(taken))
    session.add(image_class)
    session.flush()
    _check_class_name(session, project_id, name, exclude=image_class.id)  # again: see rename_class
    return image_class


def set_class_enabled(*, session: Session, class_id: int, enabled: bool) -> ImageClass:
    image_class = get_class(session=session, class_id=class_id)
    image_class.enabled = enabled
    session.flush()
    return image_class


def rename_class(*, session: Session, class_id: int, name: str) -> ImageClass:
    image_class = get_class(session=session, class_id=class_id)
    lock_project(session=session, project_id=image_class.project_id)
    _check_class_name(session, image_class.project_id, name, exclude=class_id)
    image_class.name = name
    session.flush()
    # Checked again once our write holds SQLite's write lock: two requests naming "Dup" and "dup" at the same
    # moment both pass the first check, and the unique constraint compares names exactly. (On PostgreSQL the
    # project's row lock above already made the second request wait for the first one's commit.)
    _check_class_name(session, image_class.project_id, name, exclude=class_id)
    return image_class


def class_sample_keys(*, session: Session, class_id: int) -> list[str]:
    return list(session.scalars(select(Sample.key).where(Sample.class_id == class_id)))


# --- samples ---


def add_sample(*, session: Session, class_id: int, key: str, filename: str, original_format: str,
               width: int, height: int, source: str = "upload", burst_id: str | None = None) -> Sample:
    sample = Sample(class_id=class_id, key=key, filename=filename, original_format=original_format,
                    width=width, height=height, source=source, burst_id=burst_id)
    session.add(sample)
    session.flush()
    return sample


def all_sample_keys(*, session: Session) -> set[str]:
    """The keys whose files must stay: every sample's, and those of deletes that can still be undone."""
    return set(session.scalars(select(Sample.key))) | set(trashed_keys(session=session))


def get_sample(*, session: Session, sample_id: int) -> Sample:
    sample = session.get(Sample, sample_id)
    if sample is None:
        raise NotFound(f"sample {sample_id} not found")
    return sample


def list_samples(*, session: Session, class_id: int) -> Sequence[Sample]:
    return session.scalars(select(Sample).where(Sample.class_id == class_id).order_by(Sample.id)).all()


def sample_page(*, session: Session, class_id: int, limit: int, before: int | None = None) -> tuple[list[Sample], bool]:
    """Up to `limit` samples of the class, newest (highest id) first, with ids below `before`; and whether
    more follow. Keyset, not offset: a page costs the same deep in a big class, and a photo added or deleted
    meanwhile shifts no later page."""
    query = select(Sample).where(Sample.class_id == class_id)
    if before is not None:
        query = query.where(Sample.id < before)
    rows = list(session.scalars(query.order_by(Sample.id.desc()).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def get_samples(*, session: Session, sample_ids: Sequence[int]) -> list[Sample]:
    """The samples of these ids, in id order; NotFound names the first id that names none."""
    found = {s.id: s for s in session.scalars(select(Sample).where(Sample.id.in_(list(sample_ids))))}
    for sid in sample_ids:
        if sid not in found:
            raise NotFound(f"sample {sid} not found")
    return [found[sid] for sid in sorted(set(sample_ids))]


def training_samples(*, session: Session, project_id: int) -> list[tuple[int, int, str, str | None]]:
    """(sample id, class id, storage key, burst id) of every sample in the project's classes that are
    switched on for training ("use in training")."""
    rows = session.execute(
        select(Sample.id, Sample.class_id, Sample.key, Sample.burst_id)
        .join(ImageClass)
        .where(ImageClass.project_id == project_id, ImageClass.enabled.is_(True))
        .order_by(Sample.id)
    )
    return [tuple(r) for r in rows]


# --- embeddings ---


def embeddings_for(*, session: Session, sample_ids: Sequence[int], backbone: str,
                   version: str) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    ids = list(sample_ids)
    for lo in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
        rows = session.execute(
            select(Embedding.sample_id, Embedding.vector).where(
                Embedding.sample_id.in_(ids[lo:lo + 900]),
                Embedding.backbone == backbone, Embedding.version == version,
            )
        )
        for sid, blob in rows:
            out[sid] = np.frombuffer(blob, dtype="<f4")
    return out


def store_embeddings(*, session: Session, vectors: dict[int, np.ndarray], backbone: str, version: str) -> None:
    existing = set(embeddings_for(session=session, sample_ids=list(vectors), backbone=backbone,
                                  version=version))
    # A sample deleted while it was being embedded is skipped, not resurrected.
    alive = set(session.scalars(select(Sample.id).where(Sample.id.in_(list(vectors)))))
    rows = [{"sample_id": sid, "backbone": backbone, "version": version,
             "vector": np.asarray(vec, dtype="<f4").tobytes()}
            for sid, vec in vectors.items() if sid not in existing and sid in alive]
    if not rows:
        return
    # ON CONFLICT DO NOTHING: two runs of one job (a stalled worker's and the one that took it up) may embed the
    # same photos; the second insert keeps the first's rows instead of failing its job.
    dialect = session.get_bind().dialect.name
    insert_ = postgresql_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert_(Embedding).values(rows).on_conflict_do_nothing(
        index_elements=["sample_id", "backbone", "version"]))


# --- jobs ---


def lock_project(*, session: Session, project_id: int) -> None:
    """Hold the project's row until the transaction ends (PostgreSQL's FOR UPDATE), so that a check-then-write
    such as "no job is active, so start one" cannot interleave with the same in another process. SQLite has one
    writer at a time and no FOR UPDATE: there this is a plain read."""
    session.execute(select(Project.id).where(Project.id == project_id).with_for_update())


def create_job(*, session: Session, project_id: int, kind: str, params: dict) -> Job:
    job = Job(project_id=project_id, kind=kind, params=params, status="queued", message="waiting to start")
    session.add(job)
    session.flush()
    return job


def get_job(*, session: Session, job_id: int, lock: bool = False) -> Job:
    """With `lock`, the row is held (PostgreSQL's FOR UPDATE) until the transaction ends."""
    job = session.get(Job, job_id, with_for_update=lock or None, populate_existing=lock)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def active_job(*, session: Session, project_id: int) -> Job | None:
    return session.scalar(
        select(Job).where(Job.project_id == project_id, Job.status.in_(ACTIVE)).order_by(Job.id.desc())
    )


def latest_job(*, session: Session, project_id: int) -> Job | None:
    return session.scalar(select(Job).where(Job.project_id == project_id).order_by(Job.id.desc()))


def recover_jobs(*, session: Session) -> list[int]:
    """At start-up: a job left running died with the last process; queued ones run again."""
    failed = session.scalars(
        update(Job).where(Job.status == "running").values(
            status="failed", message="interrupted: the server stopped while this job ran; train again",
            finished_at=utcnow()).returning(Job.project_id)
    ).all()
    cancelled = session.scalars(
        update(Job).where(Job.status == "queued", Job.cancel_requested.is_(True)).values(
            status="cancelled", message="cancelled", finished_at=utcnow()).returning(Job.project_id)
    ).all()
    changes.record(session, [*failed, *cancelled], changes.JOBS)  # bulk updates: no ORM event announces them
    return list(session.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.id)))


def request_cancel(*, session: Session, job_id: int) -> bool:
    """Ask a job to stop: a queued one is cancelled at once, a running one's worker sees the flag. False when the
    job has already finished."""
    job = get_job(session=session, job_id=job_id)
    # Conditional UPDATEs, not read-then-write: a worker may claim the job between our read and our write.
    moved = session.scalars(update(Job).where(Job.id == job_id, Job.status == "queued").values(
        status="cancelled", message="cancelled before it started", finished_at=utcnow(), cancel_requested=True,
    ).returning(Job.project_id)).all()
    if not moved:
        moved = session.scalars(update(Job).where(Job.id == job_id, Job.status == "running").values(
            cancel_requested=True).returning(Job.project_id)).all()
    changes.record(session, moved, changes.JOBS)
    session.expire(job)
    return bool(moved)


def db_now(session: Session):
    """The database's clock on PostgreSQL (workers on several machines compare leases by one clock, whatever their
    own say); this process's on SQLite, which is one machine anyway."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(select(func.now()))
    return utcnow()


def claim_job(*, session: Session, job_id: int, worker: str | None, seconds: float | None) -> Job | None:
    """Take a queued job for `worker`, holding it `seconds` (a lease the worker renews), or None when it is not
    waiting any more. One conditional UPDATE: of two workers claiming at once exactly one gets the row."""
    now = db_now(session)
    claimed = session.scalars(
        update(Job).where(Job.id == job_id, Job.status == "queued", Job.model_id.is_(None),
                          Job.cancel_requested.is_(False)).values(
            status="running", started_at=now, message="starting", worker=worker, attempts=Job.attempts + 1,
            lease_until=now + timedelta(seconds=seconds) if seconds else None).returning(Job.project_id)
    ).all()
    if not claimed:
        return None
    changes.record(session, claimed, changes.JOBS)
    return session.get(Job, job_id, populate_existing=True)


def renew_lease(*, session: Session, job_id: int, worker: str, seconds: float,
                model_id: int | None = None) -> bool | None:
    """Extend `worker`'s hold on its running job (and record its model, in the model's own transaction); None
    when the job is no longer this worker's, else whether someone asked it to stop. On PostgreSQL the row stays
    locked until the commit, so no other worker can take the job up between this check and the model's write."""
    values = {"lease_until": db_now(session) + timedelta(seconds=seconds)}
    if model_id is not None:
        values["model_id"] = model_id
    row = session.execute(
        update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running").values(**values)
        .returning(Job.cancel_requested)
    ).first()
    return None if row is None else bool(row[0])


def release_job(*, session: Session, job_id: int, worker: str) -> None:
    """A worker asked to stop hands its running job back to the queue, uncounted."""
    released = session.scalars(
        update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running").values(
            status="queued", worker=None, lease_until=None, attempts=Job.attempts - 1, progress=0.0,
            message="waiting for a worker (the last one was stopped)").returning(Job.project_id)
    ).all()
    changes.record(session, released, changes.JOBS)


def requeue_lost_jobs(*, session: Session, max_attempts: int) -> list[int]:
    """Running jobs whose worker stopped renewing its lease (killed, machine lost): queued again, or failed after
    `max_attempts` workers, or cancelled if that was asked. The ids queued again. Safe from any number of
    processes at once: each job is moved by exactly one conditional UPDATE."""
    now = db_now(session)
    lost = (Job.status == "running", Job.lease_until.is_not(None), Job.lease_until < now)
    # Its model was committed (with the lease checked) before the worker died: the job is done, not to be rerun.
    touched = list(session.scalars(update(Job).where(*lost, Job.model_id.is_not(None)).values(
        status="succeeded", progress=1.0, finished_at=now, worker=None, lease_until=None,
        message="model ready (its worker stopped before it could say so)").returning(Job.project_id)))
    touched += list(session.scalars(update(Job).where(*lost, Job.cancel_requested.is_(True)).values(
        status="cancelled", message="cancelled", finished_at=now, worker=None, lease_until=None,
    ).returning(Job.project_id)))
    touched += session.scalars(update(Job).where(*lost, Job.attempts >= max_attempts).values(
        status="failed", finished_at=now, worker=None, lease_until=None,
        message=f"failed: the worker stopped answering while it ran, {max_attempts} times; train again",
    ).returning(Job.project_id))
    requeued = session.execute(update(Job).where(*lost).values(
        status="queued", worker=None, lease_until=None, progress=0.0,
        message="waiting for another worker: the one running it stopped answering",
    ).returning(Job.id, Job.project_id)).all()
    changes.record(session, [*touched, *(pid for _, pid in requeued)], changes.JOBS)
    return sorted(job_id for job_id, _ in requeued)


def queued_jobs(*, session: Session, older_than: timedelta) -> list[int]:
    return list(session.scalars(select(Job.id).where(Job.status == "queued",
                                                     Job.created_at < utcnow() - older_than).order_by(Job.id)))


# A model's follow-up (its learning curves) runs in the worker right after its job, one at a time, so a
# stopped server can have left at most the newest few models waiting: no need to read every model's metrics.
RECENT_MODELS = 10


def recover_follow_ups(*, session: Session) -> None:
    """At start-up: learning curves left "pending" by a dead process say so, instead of pending for ever."""
    interrupted = {"status": "interrupted", "reason": "the server stopped while they were worked out; train again "
                   "to get them"}
    for model in session.scalars(select(TrainedModel).order_by(TrainedModel.id.desc()).limit(RECENT_MODELS)):
        if (model.metrics or {}).get("learning_curves", {}).get("status") == "pending":
            model.metrics = {**model.metrics, "learning_curves": interrupted}
            job = session.scalar(select(Job).where(Job.model_id == model.id))
            if job is not None and job.metrics:
                job.metrics = {**job.metrics, "learning_curves": interrupted}


# --- models ---


def next_model_version(*, session: Session, project_id: int) -> int:
    current = session.scalar(select(func.max(TrainedModel.version)).where(TrainedModel.project_id == project_id))
    return (current or 0) + 1


def list_models(*, session: Session, project_id: int) -> Sequence[TrainedModel]:
    return session.scalars(
        select(TrainedModel).where(TrainedModel.project_id == project_id).order_by(TrainedModel.id.desc())
    ).all()


def model_summaries(*, session: Session, project_id: int) -> list[TrainedModel]:
    """The versions, newest first, without their weights and metrics loaded (see model_metrics): a list
    page reads neither."""
    return list(session.scalars(
        select(TrainedModel).options(defer(TrainedModel.weights), defer(TrainedModel.metrics))
        .where(TrainedModel.project_id == project_id).order_by(TrainedModel.id.desc())
    ))


def model_summary(*, session: Session, model_id: int) -> TrainedModel | None:
    """The row without its weights and metrics loaded (read on access, should a caller need them)."""
    return session.get(TrainedModel, model_id,
                       options=[defer(TrainedModel.weights), defer(TrainedModel.metrics)])


def model_metrics(*, session: Session, model_ids: Sequence[int], per_photo: bool = False) -> dict[int, dict]:
    """model id -> its metrics; without `per_photo`, less the rows per validation photo (PER_PHOTO), which
    grow with the photos (20,000 rows at 20,000 photos): SQLite drops them before Python parses the rest.
    SQLite's JSON refuses NaN, which Python writes for a figure with nothing to measure; such a row (a model
    without validation photos, so its per-photo lists are empty anyway) is parsed whole and trimmed here."""
    ids = list(model_ids)
    if not ids:
        return {}
    if per_photo:
        rows = session.execute(select(TrainedModel.id, TrainedModel.metrics).where(TrainedModel.id.in_(ids)))
        return {mid: metrics or {} for mid, metrics in rows}
    if session.get_bind().dialect.name == "postgresql":  # stored NaN-free (app.db): jsonb drops the keys
        trimmed = cast(TrainedModel.metrics, JSONB)
        for key in PER_PHOTO:
            trimmed = trimmed.op("-")(key)
    else:
        trimmed = case((func.json_valid(TrainedModel.metrics),
                        func.json_remove(TrainedModel.metrics, *(f"$.{k}" for k in PER_PHOTO))),
                       else_=TrainedModel.metrics)
    rows = session.execute(select(TrainedModel.id, type_coerce(trimmed, JSON)).where(TrainedModel.id.in_(ids)))
    return {mid: {k: v for k, v in (metrics or {}).items() if k not in PER_PHOTO} for mid, metrics in rows}


def validation_rows(*, session: Session, model_id: int) -> list:
    """The model's rows per validation photo (metrics["val_predictions"]): SQLite picks them out, so the rest
    of the metrics is never parsed; metrics SQLite cannot read (NaN, see model_metrics) are parsed whole."""
    column = TrainedModel.metrics
    if session.get_bind().dialect.name == "postgresql":
        found = session.execute(select(type_coerce(column.op("->")("val_predictions"), JSON))
                                .where(TrainedModel.id == model_id)).first()
        if found is None:
            raise NotFound(f"model {model_id} not found")
        return found[0] if isinstance(found[0], list) else []
    found = session.execute(select(func.json_valid(column), type_coerce(
        case((func.json_valid(column), func.json_extract(column, "$.val_predictions"))), JSON))
        .where(TrainedModel.id == model_id)).first()
    if found is None:
        raise NotFound(f"model {model_id} not found")
    valid, rows = found
    if not valid:
        rows = (session.scalar(select(column).where(TrainedModel.id == model_id)) or {}).get("val_predictions")
    return rows if isinstance(rows, list) else []


def get_model(*, session: Session, model_id: int) -> TrainedModel:
    model = session.get(TrainedModel, model_id)
    if model is None:
        raise NotFound(f"model {model_id} not found")
    return model


def delete_embeddings_of(*, session: Session, sample_ids: Sequence[int]) -> None:
    session.execute(delete(Embedding).where(Embedding.sample_id.in_(list(sample_ids))))


def set_current_model(*, session: Session, project_id: int, model_id: int) -> TrainedModel:
    model = get_model(session=session, model_id=model_id)
    if model.project_id != project_id:
        raise NotFound(f"model {model_id} not found in project {project_id}")
    get_project(session=session, project_id=project_id).current_model_id = model.id
    session.flush()
    return model


def delete_model(*, session: Session, model_id: int) -> None:
    model = get_model(session=session, model_id=model_id)
    project = get_project(session=session, project_id=model.project_id)
    if project.current_model_id == model.id:
        raise Conflict("this is the project's current model; make another version current first")
    session.delete(model)
    session.flush()


# --- fine-tuned backbones (content-addressed) ---


def store_backbone_weights(*, session: Session, backbone: str, state: bytes) -> str:
    import hashlib

    digest = hashlib.sha256(state).hexdigest()
    if session.get(BackboneWeights, digest) is None:
        session.add(BackboneWeights(digest=digest, backbone=backbone, state=state))
        session.flush()
    return digest


def backbone_state(*, session: Session, digest: str) -> bytes:
    row = session.get(BackboneWeights, digest)
    if row is None:
        raise NotFound(f"fine-tuned backbone {digest[:12]} not found")
    return row.state


def prune_backbone_weights(*, session: Session) -> None:
    """Drop fine-tuned backbones no model or project refers to any more."""
    used = set(session.scalars(select(Project.base_digest).where(Project.base_digest.is_not(None))))
    for features in session.scalars(select(TrainedModel.features).where(TrainedModel.features.contains("@"))):
        used.add(features.partition("@")[2])
    session.execute(delete(BackboneWeights).where(BackboneWeights.digest.not_in(used)))
