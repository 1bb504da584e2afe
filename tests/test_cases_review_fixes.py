"""What a phone may not do to a case, and how edits of a screening are applied."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from sqlalchemy import func, select

from server.cases.models import Case, MovementEvent
from server.extensions import db
from server.submissions.models import Submission
from tests.cases_support import (
    FOLLOW_UP_MD,
    SCREENING_MD,
    drain,
    follow_up_xml,
    post,
    screening_xml,
)
from tests.factories import app_user_with_forms


@pytest.fixture
def two_projects(app, make):
    """Two projects with the mapped forms, each with its own phone."""
    phones = []
    for name in ("Project A", "Project B"):
        project = make.project(name)
        make.form(SCREENING_MD, project=project)
        make.form(FOLLOW_UP_MD, project=project)
        _, token = app_user_with_forms(project)
        phones.append((project.id, token))
    return phones


def row(instance_id: str) -> Submission:
    db.session.rollback()
    return db.session.scalar(select(Submission).where(Submission.instance_id == instance_id))


def as_edit(xml: bytes, original: str, new: str) -> bytes:
    return xml.replace(
        f"<instanceID>{original}</instanceID>".encode(),
        f"<deprecatedID>{original}</deprecatedID><instanceID>{new}</instanceID>".encode(),
    )


def test_a_phone_cannot_change_another_projects_case(
    two_projects, client, runner, app, app_context, monkeypatch
):
    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", [])
    (a, token_a), (b, token_b) = two_projects
    xml, _, case_uuid = screening_xml(first="Dara")
    post(client, a, token_a, xml)
    drain(runner)
    forged_update, update_id = follow_up_xml(case_uuid, base_version=1, status="closed")
    post(client, b, token_b, forged_update)
    forged_create, create_id, _ = screening_xml(case_id=case_uuid, first="Forged")
    post(client, b, token_b, forged_create)
    drain(runner)
    case = db.session.scalar(select(Case).where(Case.uuid == case_uuid))
    assert case.status == "Active" and case.person.first_name == "Dara" and case.version == 1
    assert row(update_id).state == "needs_review"
    assert row(create_id).state == "needs_review"
    assert "already used elsewhere" in row(create_id).problems[0]["message"]


def test_a_record_id_of_another_case_is_refused_not_retried(
    two_projects, client, runner, app_context
):
    (a, token), _ = two_projects
    first, _, first_case = screening_xml()
    post(client, a, token, first)
    drain(runner)
    event_id = db.session.scalar(select(MovementEvent.uuid).limit(1))
    second, second_id, second_case = screening_xml()
    second = second.replace(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"{second_case}/event/0")).encode(), event_id.encode()
    )
    post(client, a, token, second)
    drain(runner)
    submission = row(second_id)
    assert submission.state == "needs_review"
    assert "belongs to another case" in submission.problems[0]["message"]
    assert db.session.scalar(select(func.count()).select_from(MovementEvent)) == 3


def test_an_edit_of_a_screening_does_not_overwrite_a_later_follow_up(
    two_projects, client, runner, app_context
):
    (a, token), _ = two_projects
    xml, original_id, case_uuid = screening_xml(children="2")
    post(client, a, token, xml)
    drain(runner)
    follow_up, _ = follow_up_xml(case_uuid, base_version=1, status="active", children="5")
    post(client, a, token, follow_up)
    drain(runner)
    edited, _, _ = screening_xml(case_id=case_uuid, instance_id=original_id, children="3")
    post(client, a, token, as_edit(edited, original_id, "uuid:edit-1"))
    drain(runner)
    case = db.session.scalar(select(Case).where(Case.uuid == case_uuid))
    assert case.person.number_of_children == 5, "the follow-up's later value stands"
    assert row("uuid:edit-1").state == "needs_review"
    assert case.versions[-1].conflicts == ["prs_NumberOfChildren"]


def test_an_edit_that_refuses_consent_is_flagged_not_ignored(
    two_projects, client, runner, app_context
):
    (a, token), _ = two_projects
    xml, original_id, case_uuid = screening_xml()
    post(client, a, token, xml)
    drain(runner)
    refused, _, _ = screening_xml(case_id=case_uuid, instance_id=original_id, consent="false")
    post(client, a, token, as_edit(refused, original_id, "uuid:edit-2"))
    drain(runner)
    submission = row("uuid:edit-2")
    assert submission.state == "needs_review"
    assert "consent refused or withdrawn" in submission.problems[0]["message"]


def test_the_case_list_shows_the_reference_even_when_the_label_is_a_name(
    two_projects, client, runner, app_context
):
    (a, token), _ = two_projects
    xml, _, case_uuid = screening_xml()
    xml = xml.replace(f"<label>CB-{case_uuid[:8]}</label>".encode(), b"<label>Sokha Chan</label>")
    post(client, a, token, xml)
    drain(runner)
    response = client.get(
        f"/v1/key/{token}/projects/{a}/forms/mini_follow_up/attachments/cases.csv"
    )
    [listed] = list(csv.DictReader(io.StringIO(response.data.decode())))
    assert listed["label"] == f"CB-{case_uuid[:8]}" and b"Sokha" not in response.data


def test_database_errors_carry_no_submitted_values(app):
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["hide_parameters"] is True
