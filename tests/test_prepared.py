"""server.prepared: INSERTs on the driver's cursor write what SQLAlchemy would, and fail as
SQLAlchemy would (the view's retry and the 503 handler catch SQLAlchemy's exceptions)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from server.extensions import db
from server.forms.models import Form
from server.prepared import PreparedInsert
from server.submissions import operations
from server.submissions.models import SubmissionAttachment
from tests.factories import Factories
from tests.test_openrosa_submissions import PHOTO_FORM, submission_xml

TABLE = SubmissionAttachment.__table__
INSERT_ATTACHMENT = operations._INSERT_ATTACHMENTS  # the statement receiving runs
KEYS = INSERT_ATTACHMENT.keys


def attachment_row(submission_id: int, **values) -> dict:
    return {key: None for key in KEYS} | {"submission_id": submission_id, "name": "x.jpg"} | values


def a_submission_id() -> int:
    make = Factories()
    make.project()
    make.form(PHOTO_FORM)
    operations.receive(
        submission_xml(),
        [],
        find_form=lambda form_id: db.session.scalar(
            select(Form).where(Form.xml_form_id == form_id)
        ),
        submitter=operations.Submitter(),
    )
    db.session.commit()
    return db.session.scalar(select(TABLE.c.submission_id))


def test_values_read_back_as_the_orm_wrote_them(app_context):
    submission_id = a_submission_id()
    received = dt.datetime(2024, 6, 1, 8, 0, 0)  # no microseconds: the subtle case on SQLite
    INSERT_ATTACHMENT.execute(
        db.session, attachment_row(submission_id, expected=False, size=5, received_at=received)
    )
    db.session.commit()
    extra = db.session.scalar(
        select(SubmissionAttachment).where(SubmissionAttachment.name == "x.jpg")
    )
    assert (extra.expected, extra.size, extra.received_at) == (False, 5, received)


def test_a_driver_error_is_raised_as_sqlalchemys(app_context):
    with pytest.raises(IntegrityError):  # an attachment must have a name
        INSERT_ATTACHMENT.execute(db.session, attachment_row(1, expected=True, name=None))
    db.session.rollback()


def test_every_column_with_a_python_default_must_be_given():
    partial = PreparedInsert(lambda _dialect_name: insert(TABLE), ["submission_id", "name"])
    with pytest.raises(ValueError, match="binds"):  # `expected` has default=True
        partial._for(sqlite.dialect())
