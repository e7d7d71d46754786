"""Signing in and out, the first account, and your own password."""

from __future__ import annotations

import hmac
import math

from fastapi import APIRouter, HTTPException, Request, Response

from app import accounts
from app.api import errors
from app.api.deps import ActorDep, ServicesDep, SessionDep
from app.models import User
from app.schemas import AuthStatus, LoginIn, MeOut, PasswordChange, SetupIn
from app.security import SESSION_COOKIE, Actor, NotAuthenticated, identify
from app.services import Services

router = APIRouter(prefix="/api/auth", tags=["accounts"])

WRONG = "wrong user name or password"


def me_out(actor: Actor) -> MeOut:
    return MeOut(username=actor.username, is_admin=actor.is_admin, local=actor.is_local)


def start_session(response: Response, request: Request, services: Services, session, user: User) -> None:
    days = services.settings.session_days
    secret = accounts.open_session(session=session, user=user, days=days)
    # HttpOnly: page scripts never see it. SameSite=Lax: other sites' forms and fetches do not carry it.
    response.set_cookie(SESSION_COOKIE, secret, max_age=days * 86400, path="/", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")


def _throttled(services: Services, keys: list[str]) -> None:
    wait = services.throttle.wait_s(keys)
    if wait > 0:
        raise HTTPException(429, f"too many failed tries; wait {math.ceil(wait)} s and try again",
                            headers={"Retry-After": str(math.ceil(wait))})


def _client(request: Request) -> str:
    return f"ip:{request.client.host if request.client else '?'}"


@router.post("/login", response_model=MeOut, responses={
    **errors.error(401, WRONG), **errors.error(429, "too many failures: wait Retry-After seconds")})
def login(body: LoginIn, request: Request, response: Response, session: SessionDep, services: ServicesDep):
    """Sign in: a session cookie (HttpOnly, SameSite=Lax; Secure over HTTPS) comes with the answer."""
    keys = [f"user:{body.username.strip().casefold()}", _client(request)]
    _throttled(services, keys)
    user = accounts.authenticate(session=session, username=body.username, password=body.password)
    if user is None:
        services.throttle.failed(keys)
        raise HTTPException(401, WRONG)
    services.throttle.succeeded(keys[:1])
    start_session(response, request, services, session, user)
    return MeOut(username=user.username, is_admin=user.is_admin, local=False)


@router.post("/logout", status_code=204)
def logout(request: Request, session: SessionDep):
    """Sign out: this browser's session is revoked on the server, not just forgotten by the browser."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        accounts.close_session(session=session, secret=cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=MeOut, responses=errors.error(401, "not signed in"))
def me(actor: ActorDep):
    return me_out(actor)


@router.get("/status", response_model=AuthStatus)
def status(request: Request, session: SessionDep, services: ServicesDep):
    """Public: whether this server wants a login, whether its first account is still to be made, and who you are."""
    try:
        actor = identify(request, session, services.settings)
    except NotAuthenticated:
        actor = None
    return AuthStatus(login_required=services.settings.login_required,
                      setup_needed=accounts.count_users(session=session) == 0,
                      user=me_out(actor) if actor else None)


@router.post("/setup", response_model=MeOut, status_code=201, responses={
    **errors.error(403, "wrong setup code"), **errors.error(409, "the first account exists already"),
    **errors.error(429, "too many failures")})
def setup(body: SetupIn, request: Request, response: Response, session: SessionDep, services: ServicesDep):
    """Make the server's first account, an admin, with the one-time code `snapclass serve` printed in its log."""
    if accounts.count_users(session=session) > 0 or services.setup_code is None:
        raise HTTPException(409, "this server has accounts already: sign in, or ask an admin")
    keys = ["setup", _client(request)]
    _throttled(services, keys)
    given = body.code.strip().replace("-", "").replace(" ", "")
    if not hmac.compare_digest(given.encode(), services.setup_code.replace("-", "").encode()):
        services.throttle.failed(keys)
        raise HTTPException(403, "wrong setup code: it is in the log of `snapclass serve`")
    user = accounts.create_user(session=session, username=body.username, password=body.password, is_admin=True)
    services.setup_code = None
    start_session(response, request, services, session, user)
    return MeOut(username=user.username, is_admin=True, local=False)


@router.post("/password", status_code=204, responses={
    **errors.error(403, "the current password is wrong"), **errors.error(409, "the local user has none")})
def change_password(body: PasswordChange, request: Request, session: SessionDep, services: ServicesDep,
                    actor: ActorDep):
    """Change your password. Every session of the account is signed out; this browser gets a fresh one."""
    if actor.is_local:
        raise HTTPException(409, "with login off there is no account and no password to change")
    keys = [f"user:{actor.username}"]
    _throttled(services, keys)
    user = accounts.authenticate(session=session, username=actor.username, password=body.current_password)
    if user is None:
        services.throttle.failed(keys)
        raise HTTPException(403, "the current password is wrong")
    accounts.set_password(session=session, user=user, password=body.new_password)
    response = Response(status_code=204)
    if request.cookies.get(SESSION_COOKIE):
        start_session(response, request, services, session, user)
    return response
