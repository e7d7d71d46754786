"""API tokens: scripts send `Authorization: Bearer TOKEN` and act as the token's user."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response

from app import accounts
from app.api import errors
from app.api.deps import ActorDep, Id, SessionDep
from app.models import User
from app.schemas import TokenCreate, TokenCreated, TokenOut
from app.security import Actor

router = APIRouter(prefix="/api/tokens", tags=["accounts"])


def _user_id(actor: Actor) -> int:
    if actor.is_local:
        raise HTTPException(409, "tokens belong to accounts: with login off, scripts need none")
    return actor.user_id


@router.post("", response_model=TokenCreated, status_code=201, responses=errors.error(409, "login is off"))
def create_token(body: TokenCreate, session: SessionDep, actor: ActorDep):
    """A new token, shown in this answer only: only its hash is stored."""
    user = session.get(User, _user_id(actor))
    token, secret = accounts.create_token(session=session, user=user, name=body.name)
    return TokenCreated(id=token.id, name=token.name, prefix=token.prefix, created_at=token.created_at,
                        last_used_at=None, token=secret)


@router.get("", response_model=list[TokenOut])
def list_tokens(session: SessionDep, actor: ActorDep):
    if actor.is_local:
        return []
    return [TokenOut.model_validate(t, from_attributes=True)
            for t in accounts.list_tokens(session=session, user_id=actor.user_id)]


@router.delete("/{token_id}", status_code=204)
def revoke_token(token_id: Id, session: SessionDep, actor: ActorDep):
    accounts.revoke_token(session=session, user_id=_user_id(actor), token_id=token_id)
    return Response(status_code=204)
