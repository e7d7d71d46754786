"""Project members: viewers may see, predict and download; editors may also change and train."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from app import access, accounts, crud
from app.access import Level
from app.api import errors
from app.api.deps import ActorDep, Id, SessionDep
from app.models import ProjectMember
from app.schemas import MemberIn, MemberOut

router = APIRouter(prefix="/api/projects/{project_id}/members", tags=["projects"])


def _members(project) -> list[MemberOut]:
    owner = [MemberOut(username=project.owner.username, role="owner")] if project.owner else []
    return owner + [MemberOut(username=m.user.username, role=m.role) for m in project.members]


@router.get("", response_model=list[MemberOut])
def list_members(project_id: Id, session: SessionDep, actor: ActorDep):
    """The owner first, then members in the order they were added."""
    return _members(access.project(session, actor, project_id))


@router.post("", response_model=list[MemberOut], status_code=201, responses={
    **errors.error(422, "no such account"), **errors.error(409, "that account owns the project")})
def add_member(project_id: Id, body: MemberIn, session: SessionDep, actor: ActorDep):
    """Add someone as viewer or editor (or change their role). Owner or admin only. Answers the new list."""
    project = access.project(session, actor, project_id, Level.OWN)
    user = accounts.find_user(session=session, username=body.username)
    if user is None:
        raise HTTPException(422, f"no account named {body.username!r}")
    if user.id == project.owner_id:
        raise HTTPException(409, f"{user.username} owns this project already")
    member = next((m for m in project.members if m.user_id == user.id), None)
    if member is None:
        project.members.append(ProjectMember(user_id=user.id, role=body.role, user=user))
    else:
        member.role = body.role
    session.flush()
    return _members(project)


@router.delete("/{username}", status_code=204)
def remove_member(project_id: Id, username: str, session: SessionDep, actor: ActorDep):
    """Owner or admin; a member may also remove themselves (leave the project)."""
    project = access.project(session, actor, project_id)
    user = accounts.find_user(session=session, username=username)
    member = next((m for m in project.members if user is not None and m.user_id == user.id), None)
    if member is None:
        raise crud.NotFound(f"{username!r} is not a member of this project")
    if member.user_id != actor.user_id:
        access.project(session, actor, project_id, Level.OWN)
    project.members.remove(member)
    session.flush()
    return Response(status_code=204)
