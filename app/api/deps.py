"""Dependencies injected into routes: services, the DB session, who is asking, and bounded path ids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyCookie, HTTPBearer
from sqlalchemy.orm import Session

from app.db import session_scope
from app.security import SESSION_COOKIE, Actor, NotAuthenticated, identify
from app.services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with session_scope(services.session_factory) as session:
        yield session


# scope="function": commit before the response goes out. With the default, FastAPI commits after
# sending it, so a client could get 201 for a row it cannot read yet (seen: 8 in 300 under load).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

# Declared so that the OpenAPI schema names both ways in; identify() reads the headers itself.
_cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False,
                              description="the browser's session, from POST /api/auth/login")
_bearer_scheme = HTTPBearer(auto_error=False, description="an API token from POST /api/tokens")


def current_actor(request: Request, session: SessionDep, services: ServicesDep,
                  _cookie: Annotated[str | None, Security(_cookie_scheme)] = None,
                  _bearer: Annotated[object, Security(_bearer_scheme)] = None) -> Actor:
    actor = identify(request, session, services.settings)
    if actor is None:
        raise NotAuthenticated("sign in first")
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]

# Ids are SQL BIGINTs: a larger number names nothing, and must be a 422, not an overflow deep inside.
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
