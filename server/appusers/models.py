"""App users, as in ODK Central: a phone's identity in one project, by a token in the URL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.extensions import db


class AppUser(db.Model):
    __tablename__ = "app_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(255))
    #: sha256 of the URL token, for lookups; the token itself is kept only encrypted.
    token_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: The token encrypted with the app's key (Fernet), so its QR code can be shown again.
    token_encrypted: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]

    form_access: Mapped[list[AppUserForm]] = relationship(cascade="all, delete-orphan")

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.token_sha256 is not None


class AppUserForm(db.Model):
    """A form an app user may see and fill."""

    __tablename__ = "app_user_forms"

    app_user_id: Mapped[int] = mapped_column(
        ForeignKey("app_users.id", ondelete="CASCADE"), primary_key=True
    )
    form_id: Mapped[int] = mapped_column(
        ForeignKey("forms.id", ondelete="CASCADE"), primary_key=True
    )
