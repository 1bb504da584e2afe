"""A failing job leaves no submitted value in the worker's log or in Redis."""

from __future__ import annotations

import logging

from rq.job import Job
from sqlalchemy import select

from server.extensions import db, redis_connection
from server.submissions.models import Submission
from server.worker import redacted_traceback
from tests.cases_support import SCREENING_MD, drain, post, screening_xml
from tests.factories import app_user_with_forms

SECRET = "Sokha Chan, born 1995-04-02"


def test_a_failing_job_logs_and_keeps_only_where_and_what_kind(
    app, make, client, runner, app_context, monkeypatch, caplog
):
    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", [])
    project = make.project()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)

    def broken(*args, **kwargs):
        raise RuntimeError(SECRET)

    monkeypatch.setattr("server.cases.operations._derive", broken)
    xml, instance_id, _ = screening_xml()
    assert post(client, project.id, token, xml).status_code == 201
    with caplog.at_level(logging.INFO):
        drain(runner)

    row = db.session.scalar(select(Submission).where(Submission.instance_id == instance_id))
    assert row.state == "failed"
    assert "RuntimeError (message withheld)" in caplog.text and "_derive" in caplog.text
    assert "Sokha" not in caplog.text and instance_id not in caplog.text
    stored = Job.fetch(row.job_id, connection=redis_connection()).latest_result().exc_string
    assert "RuntimeError (message withheld)" in stored and "Sokha" not in stored


def test_chained_exceptions_keep_their_types_and_lose_their_messages():
    try:
        try:
            raise KeyError(SECRET)
        except KeyError as inner:
            raise ValueError(SECRET) from inner
    except ValueError as outer:
        text = redacted_traceback(outer)
    assert "Sokha" not in text
    assert text.index("KeyError (message withheld)") < text.index("ValueError (message withheld)")
    assert text.count("Traceback (most recent call last):") == 2


def test_no_exception_gives_an_empty_text():
    assert redacted_traceback(None) == ""
