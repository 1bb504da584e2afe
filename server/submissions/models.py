"""Submissions as received from phones: the raw XML and every attachment, kept durably.

A row is committed before the phone is told 201; processing happens later, from the queue.
Edits (meta/deprecatedID) make a new row in the same chain (`root_instance_id`); only the
newest of a chain is `current`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.extensions import db
from server.forms.models import Form, FormDef

if TYPE_CHECKING:
    from server.cases.models import Case


class SubmissionState(enum.StrEnum):
    RECEIVED = "received"  # stored; not (yet) on the queue
    QUEUED = "queued"  # a job is on the queue
    NORMALIZED = "normalized"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"
    #: An admin gave up on a failed submission: kept as received, never normalized,
    #: no longer listed as needing attention. Submissions are never deleted.
    DISCARDED = "discarded"


SUBMISSION_STATES = tuple(s.value for s in SubmissionState)


class Submission(db.Model):
    __tablename__ = "submissions"
    __table_args__ = (
        UniqueConstraint("form_id", "instance_id"),
        CheckConstraint(f"state IN {SUBMISSION_STATES!r}", name="state_known"),
        Index("ix_submissions_state_created", "state", "created_at"),
        #: The queue page counts submissions per form and state every few seconds.
        Index("ix_submissions_form_state", "form_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("forms.id"), index=True)
    form_def_id: Mapped[int] = mapped_column(ForeignKey("form_defs.id"))
    #: meta/instanceID, e.g. "uuid:..."; unique per form.
    instance_id: Mapped[str] = mapped_column(String(255))
    #: meta/deprecatedID when this is an edit of an earlier submission.
    deprecated_id: Mapped[str | None] = mapped_column(String(255))
    #: instanceID of the first submission of the edit chain.
    root_instance_id: Mapped[str] = mapped_column(String(255), index=True)
    current: Mapped[bool] = mapped_column(default=True)
    #: The XML exactly as received (kept in the row: one durable write, served back byte
    #: for byte), and its hash, to tell retries from conflicts. Attachments live in storage.
    xml: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    xml_sha256: Mapped[str] = mapped_column(String(64))
    xml_size: Mapped[int]
    encrypted: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default=SubmissionState.RECEIVED)
    #: Collect's deviceID query parameter (an install id, not a phone number).
    device_id: Mapped[str | None] = mapped_column(String(255))
    submitter_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitter_app_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_users.id"))
    job_id: Mapped[str | None] = mapped_column(String(64))
    problem: Mapped[str | None] = mapped_column(Text)
    #: What normalization could not apply: [{"field", "path", "message"}]; shown for review.
    problems: Mapped[list] = mapped_column(JSON, default=list)
    #: The case this submission created or changed.
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(onupdate=func.now())

    form: Mapped[Form] = relationship()
    form_def: Mapped[FormDef] = relationship()
    case: Mapped[Case | None] = relationship()
    attachments: Mapped[list[SubmissionAttachment]] = relationship(
        back_populates="submission",
        order_by="SubmissionAttachment.name",
        cascade="all, delete-orphan",
    )

    @property
    def missing_attachments(self) -> list[str]:
        return [a.name for a in self.attachments if a.expected and a.blob_key is None]

    @property
    def complete(self) -> bool:
        return not self.missing_attachments


class SubmissionAttachment(db.Model):
    """A file the submission names (expected) and, once posted, its stored bytes."""

    __tablename__ = "submission_attachments"
    __table_args__ = (UniqueConstraint("submission_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    #: The file name as the form names it (a plain name, checked on receipt).
    name: Mapped[str] = mapped_column(String(255))
    expected: Mapped[bool] = mapped_column(default=True)
    blob_key: Mapped[str | None] = mapped_column(String(100))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None]
    content_type: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime | None]

    submission: Mapped[Submission] = relationship(back_populates="attachments")
