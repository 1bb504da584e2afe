"""No submitted value in any log: a failing job's (nor in Redis), nor normalizing and a sync
apply at DEBUG."""

from __future__ import annotations

import json
import logging
import re
import uuid

from rq.job import Job
from sqlalchemy import select

from server.extensions import db, redis_connection
from server.submissions.models import Submission
from server.worker import redacted_traceback
from sync.signing import new_batch, sign_batch
from tests.cases_support import SCREENING_MD, drain, post, screening_xml
from tests.factories import app_user_with_forms
from tests.sync_support import as_khm_knowing_tha, new_key

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


#: What identifies the person in the test below: none of it may reach a log record.
PERSON = {"first": "Sopheap", "family": "Vannakriya", "birthdate": "1993-11-27"}
PHONE = "+855 97 765 4321"


def test_a_person_sent_through_normalization_and_a_sync_apply_is_never_logged(
    app, make, client, runner, app_context, monkeypatch, tmp_path, caplog
):
    """Everything at DEBUG, every logger: the worker normalizing a screening into a case,
    then a peer's signed batch applied to a copy of its case."""
    tha_key = new_key()
    as_khm_knowing_tha(monkeypatch, app, tmp_path, tha_key)
    monkeypatch.setitem(app.config, "SYNC_DELIVER_ON_COMMIT", False)  # no network here
    caplog.set_level(logging.DEBUG)
    project = make.project()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    xml, instance_id, case_uuid = screening_xml(**PERSON)
    assert post(client, project.id, token, xml).status_code == 201
    drain(runner)
    assert db.session.scalar(select(Submission.state).where(Submission.case_id.is_not(None)))

    change = {
        "change_id": str(uuid.uuid4()),
        "case_uuid": str(uuid.uuid4()),
        "origin_mission": "THA",
        "version": 1,
        "kind": "upsert",
        "payload": {
            "case": {
                "owner_mission": "THA",
                "fields": {
                    "prs_FirstName": PERSON["first"],
                    "prs_SecondName": PERSON["family"],
                    "prs_Birthdate": PERSON["birthdate"],
                    "prs_MobilePhone": PHONE,
                    "prs_Gender": "Feminine",
                    "cas_Reference": "CB-THA-1",
                },
            },
            "consent": {"purposes": ["CaseManagement"]},
            "records": [],
        },
    }
    envelope = sign_batch(new_batch("THA", "KHM", [change]), tha_key)
    applied = client.post(
        "/sync/v1/inbox", data=json.dumps(envelope), content_type="application/json"
    )
    assert [ack["status"] for ack in applied.json["acks"]] == ["applied"]

    assert caplog.records, "the capture saw the work"
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''}" for record in caplog.records
    )
    for value in (*PERSON.values(), PHONE, instance_id):
        assert value not in logged, value
    # the year alone, as a word: RQ's worker ids are random hex, which may hold "1993"
    assert not re.search(r"(?<![0-9A-Za-z])1993(?![0-9A-Za-z])", logged), "the birth year"
