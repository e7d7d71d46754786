"""Share links: a project's current model, public and read-only, behind a long random token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.crud import NotFound
from app.models import Project, TrainedModel

TOKEN_BYTES = 24


@dataclass
class SharedProject:
    project_id: int
    name: str
    model: TrainedModel | None

    def page_context(self, token: str) -> dict:
        model = self.model
        return {"token": token, "project_name": self.name,
                "labels": list(model.labels) if model else [],
                "model_version": model.version if model else None,
                "unknown_threshold": model.unknown_threshold if model else None,
                "predict_url": f"/s/{token}/predict"}


def share_path(token: str) -> str:
    return f"/s/{token}"


def enable(*, session: Session, project: Project) -> str:
    """The project's share token, made on first use; sharing again gives the same link."""
    if project.share_token is None:
        project.share_token = secrets.token_urlsafe(TOKEN_BYTES)
        session.flush()
    return project.share_token


def disable(*, session: Session, project: Project) -> None:
    """Revoke: the old link answers 404 from now on, and a new share makes a new link."""
    project.share_token = None
    session.flush()


def shared_model(*, session: Session, token: str) -> SharedProject:
    # Tokens are URL-safe base64 of fixed length; anything else cannot be one (and skips the query).
    if not (20 <= len(token) <= 64) or not token.replace("-", "").replace("_", "").isalnum():
        raise NotFound("this share link does not exist or was revoked")
    project = session.scalar(select(Project).where(Project.share_token == token))
    if project is None:
        raise NotFound("this share link does not exist or was revoked")
    return SharedProject(project_id=project.id, name=project.name, model=project.current_model)
