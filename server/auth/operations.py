"""Users, passwords and API sessions; the accounts an admin manages (the Users page)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, or_, select

from server import audit
from server.audit.models import AuditEvent
from server.auth import ratelimit
from server.auth.models import ROLE_VALUES, ApiSession, Role, User
from server.extensions import db
from server.projects.models import Project, ProjectMember


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


#: A phone's successful Digest (or Basic) login is audited once per user and address in this
#: period: Collect authenticates every request, and one event each would bury the trail.
PHONE_LOGIN_AUDIT_SECONDS = 24 * 3600


def record_phone_login(user: User, address: str | None, via: str) -> bool:
    """`login` for a phone's credentials, the first time per user and address in a day;
    True when recorded (the caller commits)."""
    where = hashlib.sha256(f"{address}".encode()).hexdigest()[:16]
    if not ratelimit.once_per(
        f"casebridge:phone-login:{user.id}:{where}", PHONE_LOGIN_AUDIT_SECONDS
    ):
        return False
    record_login(user, address, via=via)
    return True


def record_phone_refusal(login: str, address: str | None, *, locked: bool, via: str) -> None:
    """`login.failed` for a phone's wrong credentials (not for the challenge Collect asks
    for first, nor a stale nonce: those are not failures); while locked, once per lockout."""
    if locked and not ratelimit.first_lockout_refusal(login, address):
        return
    failure = TooManyAttempts() if locked else AuthError()
    record_failed_login(login, address, failure, via=via)


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


# ---- accounts, as an admin manages them ------------------------------------------------


class InvalidAccount(ValueError):
    """A value given for an account is unusable; the message says which and why."""


class LastAdmin(Exception):
    """The change would leave no active administrator, and nobody could manage users."""


class UserMissing(Exception):
    """No user has this id."""


@dataclass(frozen=True)
class UserSummary:
    id: int
    name: str
    email: str | None
    role: str
    active: bool
    created_at: datetime
    #: From the audit trail (`login` events): None if never logged in since it was kept.
    last_login: datetime | None
    project_ids: list[int]


def list_users(user_id: int | None = None) -> list[UserSummary]:
    """Every user (or the one with `user_id`), by name, with the last login and the
    projects each may reach."""
    users = select(User).order_by(func.lower(User.name), User.id)
    logins = (
        select(AuditEvent.user_id, func.max(AuditEvent.at))
        .where(AuditEvent.action == "login", AuditEvent.user_id.is_not(None))
        .group_by(AuditEvent.user_id)
    )
    members = select(ProjectMember.user_id, ProjectMember.project_id).order_by(
        ProjectMember.project_id
    )
    if user_id is not None:
        users = users.where(User.id == user_id)
        logins = logins.where(AuditEvent.user_id == user_id)
        members = members.where(ProjectMember.user_id == user_id)
    last_login = dict(db.session.execute(logins).all())
    projects: dict[int, list[int]] = {}
    for member_id, project_id in db.session.execute(members):
        projects.setdefault(member_id, []).append(project_id)
    return [
        UserSummary(
            u.id,
            u.name,
            u.email,
            u.role,
            u.active,
            u.created_at,
            last_login.get(u.id),
            projects.get(u.id, []),
        )
        for u in db.session.scalars(users)
    ]


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise UserMissing(f"No user {user_id}.")
    return user


def create_account(
    name: str,
    role: str,
    *,
    email: str | None = None,
    project_ids: Iterable[int] = (),
    by_user_id: int,
    address: str | None = None,
) -> tuple[User, str]:
    """A new user with a generated password, returned once to be shown once. The caller
    commits; the audit event names the role and projects, never the name or password."""
    name = (name or "").strip()
    if not name or len(name) > 120 or ":" in name:
        raise InvalidAccount("Name: 1 to 120 characters, no ':'.")
    email = _checked_email(email)
    projects = _projects(project_ids)
    password = generate_password()
    user = create_user(name, _checked_role(role), password, email=email)
    if not user.is_admin:
        for project in projects:
            db.session.add(ProjectMember(project_id=project.id, user_id=user.id))
    record_user_created(
        user,
        [p.id for p in projects],
        email_given=email is not None,
        by_user_id=by_user_id,
        address=address,
        via="page",
    )
    db.session.flush()
    return user, password


def record_user_created(
    user: User,
    project_ids: Iterable[int],
    *,
    email_given: bool,
    by_user_id: int | None,
    address: str | None = None,
    via: str,
) -> None:
    """`user.create` from the Users page or the command line (no user then): the role and
    projects, never the name or password. In the caller's transaction."""
    _record(
        "user.create",
        user,
        by_user_id,
        address,
        role=user.role,
        projects=[] if user.is_admin else sorted(project_ids),
        email_given=email_given,
        via=via,
    )


def change_role(user: User, role: str, *, by_user_id: int, address: str | None = None) -> None:
    """Give `user` another role; never the last active admin's. The caller commits."""
    role = _checked_role(role)
    if role == user.role:
        return
    if user.is_admin:
        _keep_an_admin(user)
    _record("user.role", user, by_user_id, address, before=user.role, after=role)
    user.role = role


def set_active(user: User, active: bool, *, by_user_id: int, address: str | None = None) -> None:
    """Deactivate (no login, no API token, no phone) or reactivate. Nothing is deleted:
    what the user did stays attributed. The caller commits."""
    if user.active == active:
        return
    if not active:
        if user.is_admin:
            _keep_an_admin(user)
        end_sessions(user)
    _record("user.reactivate" if active else "user.deactivate", user, by_user_id, address)
    user.active = active


def reset_password(user: User, *, by_user_id: int, address: str | None = None) -> str:
    """A new generated password, returned once to be shown once; the old one, the user's API
    tokens and browser sessions stop working (phones need the new one too). The caller
    commits."""
    password = generate_password()
    user.set_password(password)
    end_sessions(user)
    _record("user.password_reset", user, by_user_id, address)
    return password


def set_projects(
    user: User, project_ids: Iterable[int], *, by_user_id: int, address: str | None = None
) -> None:
    """The projects a non-admin may reach, exactly these. The caller commits."""
    wanted = {p.id for p in _projects(project_ids)}
    current = set(
        db.session.scalars(select(ProjectMember.project_id).where(ProjectMember.user_id == user.id))
    )
    if wanted == current:
        return
    db.session.execute(
        delete(ProjectMember).where(
            ProjectMember.user_id == user.id, ProjectMember.project_id.in_(current - wanted)
        )
    )
    for project_id in sorted(wanted - current):
        db.session.add(ProjectMember(project_id=project_id, user_id=user.id))
    _record(
        "user.projects",
        user,
        by_user_id,
        address,
        added=sorted(wanted - current),
        removed=sorted(current - wanted),
    )
    db.session.flush()


def _keep_an_admin(user: User) -> None:
    """Refuse to demote or deactivate the only active admin. The admin rows are locked
    (PostgreSQL), so two admins demoting each other at once cannot both succeed."""
    admins = db.session.scalars(
        select(User.id).where(User.role == Role.ADMIN.value, User.active).with_for_update()
    ).all()
    if user.active and list(admins) == [user.id]:
        raise LastAdmin(f"'{user.name}' is the only active administrator: make another one first.")


def _checked_role(role: str) -> str:
    if role not in ROLE_VALUES:
        raise InvalidAccount(f"Role: one of {', '.join(ROLE_VALUES)}.")
    return role


def _checked_email(email: str | None) -> str | None:
    email = (email or "").strip() or None
    if email is None:
        return None
    if len(email) > 255 or "@" not in email[1:-1] or any(c.isspace() for c in email):
        raise InvalidAccount("Email: give an address such as name@example.org, or none.")
    if db.session.scalar(select(User.id).where(User.email == email)) is not None:
        raise UserExists("Another user has this email.")
    return email


def _projects(project_ids: Iterable[int]) -> list[Project]:
    ids = sorted(set(project_ids))
    projects = list(db.session.scalars(select(Project).where(Project.id.in_(ids))))
    if len(projects) != len(ids):
        raise InvalidAccount("Unknown project.")
    return projects


def end_sessions(user: User) -> None:
    """Log `user` out everywhere: API tokens are deleted, browser sessions (signed cookies
    we cannot reach) are refused from their next request on (`session_is_current`)."""
    db.session.execute(delete(ApiSession).where(ApiSession.user_id == user.id))
    user.session_generation += 1


def session_is_current(user: User | None, generation: object) -> bool:
    """A login session still stands: its user is active and nothing ended it since."""
    return user is not None and user.active and generation == user.session_generation


def _record(
    action: str, user: User, by_user_id: int | None, address: str | None, **details
) -> None:
    audit.record(
        action,
        user_id=by_user_id,
        object_type="user",
        object_id=user.id,
        address=address,
        details=details,
    )
