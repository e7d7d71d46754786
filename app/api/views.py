"""ORM rows to response bodies."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import access, crud
from app.colors import PALETTE
from app.models import ImageClass, Project, Sample, TrainedModel
from app.schemas import ClassOut, ModelOut, ProjectDetail, ProjectOut, SampleOut
from app.security import Actor


def class_out(c: ImageClass, sample_count: int) -> ClassOut:
    return ClassOut(id=c.id, name=c.name, sample_count=sample_count, color=c.color or PALETTE[0],
                    enabled=c.enabled)


def project_out(session: Session, project: Project) -> ProjectOut:
    counts = crud.sample_counts(session=session, project_id=project.id)
    return ProjectOut(id=project.id, name=project.name, backbone=project.backbone,
                      created_at=project.created_at, class_count=len(counts), sample_count=sum(counts.values()),
                      current_model_id=project.current_model_id)


def model_out(model: TrainedModel, current_id: int | None, metrics: dict) -> ModelOut:
    """`metrics` from crud.model_metrics: without the rows per photo unless asked for (they grow with the
    photos; GET /api/models/{id}/predictions pages through them)."""
    return ModelOut(id=model.id, project_id=model.project_id, version=model.version, backbone=model.backbone,
                    features=model.features, mode=model.mode, labels=model.labels, created_at=model.created_at,
                    is_current=model.id == current_id, unknown_threshold=model.unknown_threshold,
                    unknown_threshold_calibrated=model.unknown_threshold_calibrated, metrics=metrics)


def model_brief(session: Session, model: TrainedModel, current_id: int | None) -> ModelOut:
    """One version as lists show it: its metrics less the rows per photo."""
    return model_out(model, current_id, crud.model_metrics(session=session, model_ids=[model.id])[model.id])


def project_detail(session: Session, project: Project, actor: Actor) -> ProjectDetail:
    counts = crud.sample_counts(session=session, project_id=project.id)
    classes = [class_out(c, counts.get(c.id, 0)) for c in project.classes]
    # Not project.current_model: that loads the weights and every per-photo row, to show neither.
    model = crud.model_summary(session=session, model_id=project.current_model_id) if project.current_model_id else None
    job = crud.active_job(session=session, project_id=project.id)
    return ProjectDetail(id=project.id, name=project.name, backbone=project.backbone,
                         base_model_id=project.base_model_id,
                         created_at=project.created_at, classes=classes,
                         model=model_brief(session, model, project.current_model_id) if model else None,
                         active_job_id=job.id if job else None,
                         owner=project.owner.username if project.owner else None,
                         role=access.level(session, actor, project).role)


def sample_out(sample: Sample) -> SampleOut:
    return SampleOut(id=sample.id, class_id=sample.class_id, filename=sample.filename, width=sample.width,
                     height=sample.height, source=sample.source, burst_id=sample.burst_id,
                     created_at=sample.created_at, url=f"/api/samples/{sample.id}/image",
                     thumbnail_url=f"/api/samples/{sample.id}/thumbnail")
