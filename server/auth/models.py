from __future__ import annotations

import enum
import hashlib
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from server.extensions import db


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything, every project
    DESIGNER = "designer"  # publishes and manages forms in their projects
    COLLECTOR = "collector"  # fills forms over OpenRosa only
    VIEWER = "viewer"  # reads cases of their mission


ROLE_VALUES = tuple(role.value for role in Role)
#: The HTTP Digest realm; changing it invalidates every stored digest_ha1.
DIGEST_REALM = "CaseBridge"


def digest_ha1(name: str, realm: str, password: str) -> str:
    return hashlib.md5(f"{name}:{realm}:{password}".encode()).hexdigest()  # noqa: S324 - RFC 2617


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(f"role IN {ROLE_VALUES!r}", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    email: Mapped[str | None] = mapped_column(String(255), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    #: werkzeug's scrypt hash; None means the user cannot log in with a password.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: md5(name:realm:password), what HTTP Digest (ODK Collect) needs. Password-equivalent
    #: for that realm only; kept because Digest cannot work from a slow hash.
    digest_ha1: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(default=True)
    #: Kept in a login session; a password reset or deactivation increments it, which
    #: logs out every browser session opened before.
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    def set_password(self, password: str, realm: str = DIGEST_REALM) -> None:
        self.password_hash = generate_password_hash(password, method="scrypt")
        self.digest_ha1 = digest_ha1(self.name, realm, password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


class ApiSession(db.Model):
    """A bearer token from POST /v1/sessions, as in ODK Central. Only its hash is stored."""

    __tablename__ = "api_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]

    user: Mapped[User] = relationship()
