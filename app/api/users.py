"""Accounts, for admins: one or many at once (a class list), password resets, admin rights, removal."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app import accounts
from app.api import errors
from app.api.deps import ActorDep, SessionDep
from app.models import User
from app.schemas import (
    PasswordReset,
    Skipped,
    UserCreate,
    UserCreated,
    UserOut,
    UsersBulkCreate,
    UsersBulkCreated,
    UserUpdate,
)
from app.security import Actor, Forbidden

router = APIRouter(prefix="/api/users", tags=["accounts"], responses=errors.error(403, "admins only"))


def _admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("only an admin may manage accounts")


@router.get("", response_model=list[UserOut])
def list_users(session: SessionDep, actor: ActorDep):
    _admin(actor)
    owned = accounts.owned_project_counts(session=session)
    return [UserOut(id=u.id, username=u.username, is_admin=u.is_admin, created_at=u.created_at,
                    project_count=owned.get(u.id, 0)) for u in accounts.list_users(session=session)]


@router.post("", response_model=UserCreated, status_code=201, responses=errors.error(409, "name taken"))
def create_user(body: UserCreate, session: SessionDep, actor: ActorDep):
    """One account. Without a password in the request, one is generated and shown in this answer only."""
    _admin(actor)
    password = body.password or accounts.generate_password()
    user = accounts.create_user(session=session, username=body.username, password=password, is_admin=body.is_admin)
    return UserCreated(username=user.username, is_admin=user.is_admin, password=None if body.password else password)


@router.post("/bulk", response_model=UsersBulkCreated, status_code=201)
def create_users(body: UsersBulkCreate, session: SessionDep, actor: ActorDep):
    """Many accounts at once (a class list), each with a generated password shown in this answer only.
    Names that are taken (or repeated in the list) are skipped and said why; a malformed name refuses the whole
    list (422) so that nothing is half-made."""
    _admin(actor)
    names = [accounts.normalize_username(raw) for raw in body.usernames if raw.strip()]
    created, skipped, seen = [], [], set()
    for name in names:
        if name in seen or accounts.find_user(session=session, username=name) is not None:
            skipped.append(Skipped(username=name, reason="repeated in the list" if name in seen else "exists"))
            seen.add(name)
            continue
        seen.add(name)
        password = accounts.generate_password()
        accounts.create_user(session=session, username=name, password=password, is_admin=body.is_admin)
        created.append(UserCreated(username=name, is_admin=body.is_admin, password=password))
    return UsersBulkCreated(created=created, skipped=skipped)


def _target(session, username: str) -> User:
    return accounts.get_user(session=session, username=username)


@router.post("/{username}/password", response_model=UserCreated, responses=errors.error(404, "no such user"))
def reset_password(username: str, body: PasswordReset, session: SessionDep, actor: ActorDep):
    """Set a new password (generated unless given, shown once); the account is signed out everywhere."""
    _admin(actor)
    user = _target(session, username)
    password = body.password or accounts.generate_password()
    accounts.set_password(session=session, user=user, password=password)
    return UserCreated(username=user.username, is_admin=user.is_admin, password=None if body.password else password)


@router.patch("/{username}", response_model=UserOut, responses=errors.error(409, "the last admin"))
def update_user(username: str, body: UserUpdate, session: SessionDep, actor: ActorDep):
    _admin(actor)
    user = _target(session, username)
    accounts.set_admin(session=session, user=user, is_admin=body.is_admin)
    owned = accounts.owned_project_counts(session=session)
    return UserOut(id=user.id, username=user.username, is_admin=user.is_admin, created_at=user.created_at,
                   project_count=owned.get(user.id, 0))


@router.delete("/{username}", status_code=204, responses=errors.error(409, "the last admin"))
def remove_user(username: str, session: SessionDep, actor: ActorDep):
    """Remove an account. Its projects are kept: they go to you (or, with login off, the first admin)."""
    _admin(actor)
    user = _target(session, username)
    heir = session.get(User, actor.user_id) if not actor.is_local else None
    accounts.remove_user(session=session, user=user, heir=heir)
    return Response(status_code=204)

