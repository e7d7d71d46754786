"""Who is asking: a session cookie, an API token, or (with login off) the one implicit local user."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from app import accounts
from app.config import Settings, is_loopback
from app.models import User

SESSION_COOKIE = "snapclass_session"


class NotAuthenticated(Exception):
    """No valid session or token where one is needed (401)."""


class Forbidden(Exception):
    """Signed in, and allowed to see the thing, but not to do this to it (403)."""


@dataclass(frozen=True)
class Actor:
    # None: the implicit local user of a server with login off, who owns everything.
    user_id: int | None
    username: str
    is_admin: bool

    @property
    def is_local(self) -> bool:
        return self.user_id is None


LOCAL = Actor(user_id=None, username="local", is_admin=True)


def actor_of(user: User) -> Actor:
    return Actor(user_id=user.id, username=user.username, is_admin=user.is_admin)


def bearer_secret(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise NotAuthenticated("use the header 'Authorization: Bearer TOKEN'")
    return value.strip()


def identify(conn: HTTPConnection, session: Session, settings: Settings) -> Actor | None:
    """The actor behind a request or WebSocket, or None when login is required and nobody signed in.

    A token that is sent must be valid even where login is off: a script should hear that its token is wrong.
    """
    secret = bearer_secret(conn)
    if secret is not None:
        user = accounts.user_for_token(session=session, secret=secret)
        if user is None:
            raise NotAuthenticated("this API token is not valid (revoked, or mistyped)")
        return actor_of(user)
    cookie = conn.cookies.get(SESSION_COOKIE)
    if cookie:
        user = accounts.user_for_session(session=session, secret=cookie)
        if user is not None:
            return actor_of(user)
    if settings.login_required:
        return None
    if not addressed_locally(conn, settings):
        # DNS rebinding: a hostile site whose name resolves to 127.0.0.1 reaches a loopback server as "itself"
        # (its Origin and Host agree), so only a Host naming this machine gets the login-free local user.
        raise NotAuthenticated("without login this server answers only at a loopback address such as "
                               "http://127.0.0.1 or http://localhost")
    return LOCAL


def addressed_locally(conn: HTTPConnection, settings: Settings) -> bool:
    """The Host header names a loopback address, the very address the server listens on, or the host of an
    origin the admin listed in SNAPCLASS_ALLOWED_ORIGINS."""
    hostname = (urlsplit("//" + conn.headers.get("host", "")).hostname or "").lower()
    server = conn.scope.get("server")
    listed = {urlsplit(origin).hostname for origin in settings.allowed_origins}
    return is_loopback(hostname) or (server is not None and hostname == str(server[0]).lower()) or hostname in listed
