"""Users, passwords and API sessions."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select

from server import audit
from server.auth import ratelimit
from server.auth.models import ApiSession, Role, User
from server.extensions import db


class AuthError(Exception):
    """Wrong credentials or an invalid token (HTTP 401)."""


class TooManyAttempts(AuthError):
    """Too many wrong passwords for this login from this address (HTTP 429)."""


class UserExists(Exception):
    pass


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def create_user(name: str, role: str, password: str | None, email: str | None = None) -> User:
    role = Role(role).value
    if db.session.scalar(select(User).where(User.name == name)) is not None:
        raise UserExists(f"A user named '{name}' already exists.")
    user = User(name=name, role=role, email=email)
    if password is not None:
        if len(password) < 10:
            raise ValueError("Passwords must be at least 10 characters long.")
        user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def find_user_by_login(login: str) -> User | None:
    return db.session.scalar(
        select(User).where(or_(User.name == login, User.email == login), User.active)
    )


def authenticate(login: str, password: str, address: str | None = None) -> User:
    """Check a password; repeated failures for a login and address lock it for a while."""
    if ratelimit.is_locked(login, address):
        raise TooManyAttempts("Too many wrong passwords. Wait 15 minutes, then try again.")
    user = find_user_by_login(login)
    if user is None or not user.check_password(password):
        ratelimit.record_failure(login, address)
        raise AuthError("Incorrect username or password.")
    ratelimit.clear(login, address)
    return user


def record_login(user: User, address: str | None, via: str) -> None:
    audit.record("login", user_id=user.id, address=address, details={"via": via})


def record_failed_login(login: str, address: str | None, failure: AuthError, via: str) -> None:
    """A refused login, by the account it named if there is one. The typed login itself is
    never kept: it may be a mistyped password or somebody's name."""
    named = find_user_by_login(login) if login else None
    audit.record(
        "login.failed",
        user_id=named.id if named is not None else None,
        address=address,
        details={
            "via": via,
            "reason": "locked" if isinstance(failure, TooManyAttempts) else "refused",
            "known_account": named is not None,
        },
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_api_session(user: User, lifetime_seconds: int) -> tuple[str, ApiSession]:
    """A new bearer token; only its hash is stored."""
    token = secrets.token_urlsafe(48)
    session = ApiSession(
        token_sha256=_token_hash(token),
        user=user,
        expires_at=_now() + timedelta(seconds=lifetime_seconds),
    )
    db.session.add(session)
    db.session.flush()
    return token, session


def user_for_token(token: str) -> User | None:
    session = db.session.scalar(
        select(ApiSession).where(ApiSession.token_sha256 == _token_hash(token))
    )
    if session is None or session.expires_at <= _now() or not session.user.active:
        return None
    return session.user


def close_api_session(token: str) -> bool:
    session = db.session.scalar(
        select(ApiSession).where(ApiSession.token_sha256 == _token_hash(token))
    )
    if session is None:
        return False
    db.session.delete(session)
    return True
