"""Accounts, sessions and API tokens: keyword-only data functions on a Session. No HTTP.

Passwords are hashed with Argon2 (argon2-cffi). Session cookies and API tokens are long random values of
which only the SHA-256 is stored: a leaked database holds nothing that signs anyone in.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app import changes
from app.crud import Conflict, NotFound
from app.models import ApiToken, Project, User, UserSession, utcnow

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so an unknown name costs the time of a wrong password."""
    return _hasher.hash(secrets.token_hex(16))

USERNAME_RE = re.compile(r"^[\w.@+-]{1,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
TOKEN_PREFIX = "sc_"


class InvalidInput(ValueError):
    """A name or password that cannot be used; the message says why."""


def normalize_username(raw: str) -> str:
    """NFKC and case-folded, so look-alike spellings name one account."""
    name = unicodedata.normalize("NFKC", raw).strip().casefold()
    if not USERNAME_RE.fullmatch(name):
        raise InvalidInput("a user name is 1 to 64 letters, digits or . _ - @ + (no spaces)")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"a password has at most {MAX_PASSWORD} characters")
    return password


def generate_password() -> str:
    """Easy to read aloud and to type from a printed sheet: 3 groups of 4, no look-alike characters (~59 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- users ---


def count_users(*, session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0


def list_users(*, session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.username)).all()


def find_user(*, session: Session, username: str) -> User | None:
    try:
        name = normalize_username(username)
    except InvalidInput:
        return None
    return session.scalar(select(User).where(User.username == name))


def get_user(*, session: Session, username: str) -> User:
    user = find_user(session=session, username=username)
    if user is None:
        raise NotFound(f"no account named {username!r}")
    return user


def first_admin(*, session: Session) -> User | None:
    return session.scalar(select(User).where(User.is_admin.is_(True)).order_by(User.id))


def create_user(*, session: Session, username: str, password: str, is_admin: bool = False) -> User:
    name = normalize_username(username)
    check_password(password)
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise Conflict(f"an account named {name!r} already exists")
    user = User(username=name, password_hash=_hasher.hash(password), is_admin=is_admin)
    session.add(user)
    session.flush()
    if is_admin:
        claim_unowned_projects(session=session)
    return user


def claim_unowned_projects(*, session: Session) -> int:
    """Projects made while login was off (or before accounts existed) go to the first admin account."""
    admin = first_admin(session=session)
    if admin is None:
        return 0
    claimed = session.scalars(update(Project).where(Project.owner_id.is_(None)).values(owner_id=admin.id)
                              .returning(Project.id)).all()
    changes.record(session, claimed, changes.PROJECT)  # a bulk update: no ORM event announces it
    return len(claimed)


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    user = find_user(session=session, username=username)
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def set_password(*, session: Session, user: User, password: str) -> None:
    """A new password signs the account out everywhere (its sessions are revoked; tokens stay)."""
    user.password_hash = _hasher.hash(check_password(password))
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    session.flush()


def set_admin(*, session: Session, user: User, is_admin: bool) -> None:
    if not is_admin and user.is_admin and _admin_count(session) == 1:
        raise Conflict("this is the last admin account; make another admin first")
    user.is_admin = is_admin
    session.flush()
    if is_admin:
        claim_unowned_projects(session=session)


def _admin_count(session: Session) -> int:
    return session.scalar(select(func.count(User.id)).where(User.is_admin.is_(True))) or 0


def remove_user(*, session: Session, user: User, heir: User | None) -> int:
    """Delete an account; its projects go to `heir` (an admin), so no photo is lost. Returns how many moved."""
    if user.is_admin and _admin_count(session) == 1:
        raise Conflict("this is the last admin account; make another admin first")
    heir_id = heir.id if heir is not None and heir.id != user.id else None
    if heir_id is None:
        other = session.scalar(select(User).where(User.is_admin.is_(True), User.id != user.id).order_by(User.id))
        heir_id = other.id if other else None
    moved = session.scalars(update(Project).where(Project.owner_id == user.id).values(owner_id=heir_id)
                            .returning(Project.id)).all()
    changes.record(session, moved, changes.PROJECT)  # a bulk update: no ORM event announces it
    session.delete(user)
    session.flush()
    return len(moved)


def owned_project_counts(*, session: Session) -> dict[int, int]:
    rows = session.execute(select(Project.owner_id, func.count(Project.id)).group_by(Project.owner_id))
    return {uid: n for uid, n in rows if uid is not None}


# --- sessions ---


def open_session(*, session: Session, user: User, days: int) -> str:
    """A new signed-in session; returns the cookie value (only its hash is kept)."""
    secret = secrets.token_urlsafe(32)
    session.add(UserSession(token_hash=_digest(secret), user_id=user.id,
                            expires_at=utcnow() + timedelta(days=days)))
    # Expired sessions are swept here rather than by a timer: cheap, and the table stays small.
    session.execute(delete(UserSession).where(UserSession.expires_at < utcnow()))
    session.flush()
    return secret


def user_for_session(*, session: Session, secret: str) -> User | None:
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _digest(secret)))
    if row is None or _aware(row.expires_at) < utcnow():
        return None
    return session.get(User, row.user_id)


def close_session(*, session: Session, secret: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == _digest(secret)))


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every one we store is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# --- API tokens ---


def create_token(*, session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=_digest(secret), prefix=secret[:10])
    session.add(token)
    session.flush()
    return token, secret


def list_tokens(*, session: Session, user_id: int) -> Sequence[ApiToken]:
    return session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)).all()


def revoke_token(*, session: Session, user_id: int, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound(f"token {token_id} not found")
    session.delete(token)
    session.flush()


def user_for_token(*, session: Session, secret: str) -> User | None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if token is None:
        return None
    now = utcnow()
    # Written at most once a minute: a script's every call should not be a database write.
    if token.last_used_at is None or _aware(token.last_used_at) < now - timedelta(minutes=1):
        token.last_used_at = now
    return session.get(User, token.user_id)
