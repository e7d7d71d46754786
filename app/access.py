"""What an actor may touch. Every route reaches a project, class, sample, job or model through here.

A project the actor has no part in is NotFound, exactly as if it did not exist (ids reveal nothing); a member
whose role is too small for the action gets Forbidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import crud
from app.accounts import first_admin
from app.models import ImageClass, Job, Project, ProjectMember, Sample, TrainedModel
from app.security import Actor, Forbidden


class Level(IntEnum):
    NONE = 0
    VIEW = 1  # read, predict, go live, download
    EDIT = 2  # also change classes and samples, train, manage model versions
    OWN = 3  # also rename, delete, share, change members

    @property
    def role(self) -> str:
        return {Level.VIEW: "viewer", Level.EDIT: "editor", Level.OWN: "owner"}.get(self, "none")


ROLES = {"viewer": Level.VIEW, "editor": Level.EDIT}
ACTIONS = {Level.VIEW: "see", Level.EDIT: "change or train", Level.OWN: "rename, delete, share or change members of"}


def level(session: Session, actor: Actor, project: Project) -> Level:
    if actor.is_admin or (project.owner_id is not None and project.owner_id == actor.user_id):
        return Level.OWN
    role = session.scalar(select(ProjectMember.role).where(
        ProjectMember.project_id == project.id, ProjectMember.user_id == actor.user_id))
    return ROLES.get(role, Level.NONE)


def _allowed(session: Session, actor: Actor, found, owner: Project | None, what: str, ident: int, need: Level):
    """`found` (a row of `owner`, or the project itself), if the actor's level on the project reaches `need`."""
    have = level(session, actor, owner) if found is not None and owner is not None else Level.NONE
    if have == Level.NONE:
        raise crud.NotFound(f"{what} {ident} not found")
    if have < need:
        raise Forbidden(f"as a {have.role} of this project you may not {ACTIONS[need]} it; ask its owner")
    return found


def project(session: Session, actor: Actor, project_id: int, need: Level = Level.VIEW) -> Project:
    found = session.get(Project, project_id)
    return _allowed(session, actor, found, found, "project", project_id, need)


def image_class(session: Session, actor: Actor, class_id: int, need: Level = Level.VIEW) -> ImageClass:
    found = session.get(ImageClass, class_id)
    return _allowed(session, actor, found, found and found.project, "class", class_id, need)


def sample(session: Session, actor: Actor, sample_id: int, need: Level = Level.VIEW) -> Sample:
    found = session.get(Sample, sample_id)
    return _allowed(session, actor, found, found and found.image_class.project, "sample", sample_id, need)


def job(session: Session, actor: Actor, job_id: int, need: Level = Level.VIEW) -> Job:
    found = session.get(Job, job_id)
    return _allowed(session, actor, found, found and session.get(Project, found.project_id), "job", job_id, need)


def model(session: Session, actor: Actor, model_id: int, need: Level = Level.VIEW) -> TrainedModel:
    found = session.get(TrainedModel, model_id)
    return _allowed(session, actor, found, found and found.project, "model", model_id, need)


def visible_projects(session: Session, actor: Actor) -> Sequence[Project]:
    query = select(Project).order_by(Project.id.desc())
    if not actor.is_admin:
        member_of = select(ProjectMember.project_id).where(ProjectMember.user_id == actor.user_id)
        query = query.where(or_(Project.owner_id == actor.user_id, Project.id.in_(member_of)))
    return session.scalars(query).all()


def new_project_owner(session: Session, actor: Actor) -> int | None:
    """The local user's projects go to the first admin (or wait for one: see accounts.claim_unowned_projects)."""
    if not actor.is_local:
        return actor.user_id
    admin = first_admin(session=session)
    return admin.id if admin else None
