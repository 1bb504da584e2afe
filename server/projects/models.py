from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.extensions import db


class Project(db.Model):
    """Groups forms, users' access and app users, as a project does in ODK Central."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(onupdate=func.now())

    members: Mapped[list[ProjectMember]] = relationship(
        back_populates="project", cascade="all, delete-orphan"
    )


class ProjectMember(db.Model):
    """A non-admin user's access to one project (admins reach every project)."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    project: Mapped[Project] = relationship(back_populates="members")


class ProjectKey(db.Model):
    """A project's managed encryption key (ODK Central's "managed encryption").

    The private key is stored only encrypted under a passphrase the server never stores in
    the database (server.projects.keys); forms published to the project carry the public key.
    Rows are kept after a key stops being active: older form versions still need them.
    """

    __tablename__ = "project_keys"
    __table_args__ = (
        # One active key per project.
        Index(
            "uq_project_keys_active",
            "project_id",
            unique=True,
            postgresql_where=text("active"),
            sqlite_where=text("active"),
        ),
        CheckConstraint("iterations >= 100000", name="iterations_enough"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    #: SubjectPublicKeyInfo PEM.
    public_pem: Mapped[str] = mapped_column(Text)
    #: The same key as forms carry it (base64 DER, `base64RsaPublicKey`): matches
    #: FormDef.public_key, so a submission's key is found with one equality.
    public_key: Mapped[str] = mapped_column(Text)
    #: AES-256-CBC of the PKCS#8 PEM under PBKDF2-HMAC-SHA256(passphrase, salt, iterations).
    encrypted_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    iv: Mapped[bytes] = mapped_column(LargeBinary)
    iterations: Mapped[int]
    #: Shown to whoever must type the passphrase; never the passphrase itself.
    hint: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    project: Mapped[Project] = relationship()
