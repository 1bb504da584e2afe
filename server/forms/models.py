"""Forms, their versions (definitions) and their media, shaped as in ODK Central.

A Form is the stable thing phones know by `xmlFormId`. Each upload makes a FormDef:
the one with `published_at` unset is the draft (at most one per form); the newest
published one is what phones get; older published ones stay for their submissions.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.blobs.models import Blob
from server.cases.entity_list import dataset_for
from server.extensions import db


class FormState(enum.StrEnum):
    OPEN = "open"  # listed to phones, accepts submissions
    CLOSING = "closing"  # not listed, still accepts submissions already under way
    CLOSED = "closed"  # refuses submissions with a message


FORM_STATES = tuple(state.value for state in FormState)
EMPTY_VERSION_IN_URL = "___"


class Form(db.Model):
    __tablename__ = "forms"
    __table_args__ = (
        UniqueConstraint("project_id", "xml_form_id"),
        CheckConstraint(f"state IN {FORM_STATES!r}", name="state_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    #: The XForm's instance `id` attribute; safe characters only (checked on upload).
    xml_form_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16), default=FormState.OPEN)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(onupdate=func.now())

    defs: Mapped[list[FormDef]] = relationship(
        back_populates="form", order_by="FormDef.id", cascade="all, delete-orphan"
    )

    @property
    def current_def(self) -> FormDef | None:
        published = [d for d in self.defs if d.published_at is not None]
        return max(published, key=lambda d: (d.published_at, d.id)) if published else None

    @property
    def draft_def(self) -> FormDef | None:
        return next((d for d in self.defs if d.published_at is None), None)

    def published_version(self, version: str) -> FormDef | None:
        """A published version; Central spells the empty version "___" in URLs."""
        version = "" if version == EMPTY_VERSION_IN_URL else version
        return next((d for d in self.published_defs if d.version == version), None)

    @property
    def published_defs(self) -> list[FormDef]:
        return sorted(
            (d for d in self.defs if d.published_at is not None),
            key=lambda d: (d.published_at, d.id),
            reverse=True,
        )


class FormDef(db.Model):
    """One version of a form: the XForm exactly as it will be served, and its source."""

    __tablename__ = "form_defs"
    __table_args__ = (
        # Phones cache by version: a published version string is never reused.
        Index(
            "uq_form_defs_published_version",
            "form_id",
            "version",
            unique=True,
            postgresql_where=text("published_at IS NOT NULL"),
            sqlite_where=text("published_at IS NOT NULL"),
        ),
        # At most one draft per form.
        Index(
            "uq_form_defs_one_draft",
            "form_id",
            unique=True,
            postgresql_where=text("published_at IS NULL"),
            sqlite_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id", ondelete="CASCADE"), index=True)
    #: The `version` attribute of the XForm's instance root; "" when the form has none.
    version: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(1000))
    #: The XForm, byte for byte as served to phones (UTF-8). Deferred: listing and receiving
    #: submissions need only its hashes.
    xml: Mapped[str] = mapped_column(Text, deferred=True)
    #: md5 of the served bytes, as OpenRosa's formList "md5:" hash.
    xml_md5: Mapped[str] = mapped_column(String(32))
    xml_sha256: Mapped[str] = mapped_column(String(64))
    #: base64RsaPublicKey of an encrypted form, else None.
    public_key: Mapped[str | None] = mapped_column(Text)
    source_blob_id: Mapped[int | None] = mapped_column(ForeignKey("blobs.id"))
    source_filename: Mapped[str | None] = mapped_column(String(255))
    #: pyxform and ODK Validate warnings, kept to show on the form page.
    warnings: Mapped[list] = mapped_column(JSON, default=list)
    #: How submissions of this version become cases (server.cases.mapping); None: no case.
    case_mapping: Mapped[dict | None] = mapped_column(JSON)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None]

    form: Mapped[Form] = relationship(back_populates="defs")
    source_blob: Mapped[Blob | None] = relationship()
    attachments: Mapped[list[FormAttachment]] = relationship(
        back_populates="form_def", order_by="FormAttachment.name", cascade="all, delete-orphan"
    )

    @property
    def is_draft(self) -> bool:
        return self.published_at is None

    @property
    def missing_attachments(self) -> list[FormAttachment]:
        return [a for a in self.attachments if a.blob_id is None and a.dataset is None]


ATTACHMENT_TYPES = ("image", "audio", "video", "file")


class FormAttachment(db.Model):
    """A media file the XForm names (jr://images/..., jr://file-csv/...)."""

    __tablename__ = "form_attachments"
    __table_args__ = (
        UniqueConstraint("form_def_id", "name"),
        CheckConstraint(f"type IN {ATTACHMENT_TYPES!r}", name="type_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_def_id: Mapped[int] = mapped_column(
        ForeignKey("form_defs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    blob_id: Mapped[int | None] = mapped_column(ForeignKey("blobs.id"))
    updated_at: Mapped[datetime | None]

    form_def: Mapped[FormDef] = relationship(back_populates="attachments")
    blob: Mapped[Blob | None] = relationship()

    @property
    def dataset(self) -> str | None:
        """The entity list served in this file's place (as Central links `<dataset>.csv`)."""
        return dataset_for(self.name) if self.type == "file" else None
