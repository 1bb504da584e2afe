"""Submissions become cases: through the real queue and worker, idempotent, never lossy."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from server.cases.models import Case, CaseVersion, Consent, MovementEvent, Person
from server.extensions import db
from server.submissions.jobs import process_submission
from server.submissions.models import Submission
from tests.cases_support import (
    drain,
    follow_up_xml,
    mapped_forms_phone,
    post,
    screening_xml,
)
from tests.factories import PASSWORD, app_user_with_forms, counts, simple_form_md


@pytest.fixture
def phone(app, make):
    """The mapped screening and follow-up forms, and an app user who may fill both."""
    return mapped_forms_phone(make)


def submission(instance_id: str) -> Submission:
    return db.session.scalar(select(Submission).where(Submission.instance_id == instance_id))


def case_by_uuid(uuid: str) -> Case | None:
    return db.session.scalar(select(Case).where(Case.uuid == uuid))


def test_a_screening_makes_one_case_with_its_person_episode_events_and_consent(
    phone, client, runner, app_context
):
    project_id, token = phone
    xml, instance_id, case_uuid = screening_xml()
    assert post(client, project_id, token, xml).status_code == 201
    drain(runner)

    row = submission(instance_id)
    assert row.state == "normalized", row.problems
    case = case_by_uuid(case_uuid)
    assert case is not None and row.case_id == case.id
    assert case.reference == f"CB-{case_uuid[:8]}" and case.label == case.reference
    assert case.owner_mission == "LOCAL" and case.status == "Active" and case.version == 1
    person = case.person
    assert (person.first_name, person.second_name) == ("Sokha", "Chan")
    assert person.gender == "Feminine"
    assert person.birthdate == dt.date(1995, 4, 2) and person.birth_year == 1995
    assert person.citizenship == ["KHM"] and person.number_of_children == 2
    assert case.victim.trafficking_status == "ActualVictimOfTrafficking"
    [episode] = case.episodes
    assert episode.types_of_exploitation == ["ForcedLabour"] and episode.person is person
    events = [(e.type, e.country, e.date) for e in case.movement_events]
    assert events == [
        ("Recruitment", "KHM", dt.date(2024, 1, 10)),
        ("Exploitation", "THA", dt.date(2024, 2, 1)),
    ]
    assert (case.consent.given, case.consent.sharing, case.consent.withdrawn) == (
        True,
        True,
        False,
    )
    [version] = case.versions
    assert version.submission_id == row.id and version.changes["create"] is True
    assert version.changes["fields"]["prs_Gender"] == "Feminine"
    assert len(version.changes["records"]) == 2


def test_processing_twice_changes_nothing(phone, client, runner, app_context):
    project_id, token = phone
    xml, instance_id, _ = screening_xml()
    post(client, project_id, token, xml)
    drain(runner)
    before = counts()
    row = submission(instance_id)
    assert process_submission(row.form_id, instance_id) == "normalized"
    assert counts() == before


def test_invalid_values_are_flagged_and_the_valid_rest_is_applied(
    phone, client, runner, app_context
):
    project_id, token = phone
    xml, instance_id, case_uuid = screening_xml(
        gender="robot", children="2.5", citizenship="KHM XYZ"
    )
    assert post(client, project_id, token, xml).status_code == 201
    drain(runner)

    row = submission(instance_id)
    assert row.state == "needs_review"
    flagged = {p["field"]: p for p in row.problems}
    assert set(flagged) == {"prs_Gender", "prs_NumberOfChildren", "prs_Citizenship"}
    assert flagged["prs_NumberOfChildren"]["path"] == "/data/children"
    assert "whole number" in flagged["prs_NumberOfChildren"]["message"]
    assert "robot" in flagged["prs_Gender"]["message"]
    case = case_by_uuid(case_uuid)
    assert case.person.first_name == "Sokha" and case.person.gender is None
    assert case.person.number_of_children is None and len(case.movement_events) == 2


def test_an_admin_sees_what_could_not_be_applied(phone, make, client, runner):
    project_id, token = phone
    xml, instance_id, _ = screening_xml(children="many")
    post(client, project_id, token, xml)
    drain(runner)
    admin = make.user(role="admin")
    session = client.post("/v1/sessions", json={"email": admin.name, "password": PASSWORD})
    response = client.get(
        f"/v1/projects/{project_id}/forms/mini_screening/submissions/{instance_id}",
        headers={"Authorization": f"Bearer {session.json['token']}"},
    )
    assert response.status_code == 200
    assert response.json["state"] == "needs_review" and response.json["caseId"] is not None
    [problem] = response.json["problems"]
    assert problem == {
        "field": "prs_NumberOfChildren",
        "path": "/data/children",
        "message": "'many' is not a number.",
    }


def test_no_consent_makes_no_case(phone, client, runner, app_context):
    project_id, token = phone
    xml, instance_id, _ = screening_xml(consent="false")
    post(client, project_id, token, xml)
    drain(runner)
    assert submission(instance_id).state == "normalized"
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0
    assert db.session.scalar(select(func.count()).select_from(Person)) == 0


def test_a_form_without_mapping_is_stored_and_makes_no_case(make, client, runner, app_context):
    project = make.project()
    make.form(simple_form_md("plain"), project=project)
    _, token = app_user_with_forms(project)
    xml = b'<data id="plain" version="1"><q_name>x</q_name><meta><instanceID>uuid:p1</instanceID></meta></data>'
    assert post(client, project.id, token, xml).status_code == 201
    drain(runner)
    assert submission("uuid:p1").state == "normalized"
    assert db.session.scalar(select(func.count()).select_from(Case)) == 0


def test_a_follow_up_updates_the_case_and_an_old_base_version_is_a_conflict(
    phone, client, runner, app_context
):
    project_id, token = phone
    xml, _, case_uuid = screening_xml()
    post(client, project_id, token, xml)
    drain(runner)

    closing, closing_id = follow_up_xml(case_uuid, base_version=1, status="closed")
    assert post(client, project_id, token, closing).status_code == 201
    drain(runner)
    case = case_by_uuid(case_uuid)
    assert submission(closing_id).state == "normalized"
    assert case.status == "Closed" and case.closed_at is not None and case.version == 2

    # A second phone, offline since version 1, reopens the case and records children.
    stale, stale_id = follow_up_xml(case_uuid, base_version=1, status="active", children="3")
    post(client, project_id, token, stale)
    drain(runner)
    db.session.expire_all()
    case = case_by_uuid(case_uuid)
    row = submission(stale_id)
    assert row.state == "needs_review"
    assert case.status == "Closed", "a change made since the phone's copy is not overwritten"
    assert case.person.number_of_children == 3, "fields nobody changed since are merged"
    latest = case.versions[-1]
    assert latest.conflicts == ["cas_Status"] and latest.base_version == 1
    assert [p["field"] for p in row.problems] == ["cas_Status"]


def test_an_update_of_an_unknown_case_waits_for_review(
    phone, app, client, runner, app_context, monkeypatch
):
    """Once its retries are spent (here: none), the update is left for review."""
    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", [])
    project_id, token = phone
    xml, instance_id = follow_up_xml("4b1b8c0e-0000-4000-8000-000000000000", base_version=1)
    post(client, project_id, token, xml)
    drain(runner)
    row = submission(instance_id)
    assert row.state == "needs_review" and "not known" in row.problems[0]["message"]
    assert db.session.scalar(select(func.count()).select_from(CaseVersion)) == 0


def test_a_failing_job_leaves_no_half_written_case_and_is_failed_after_its_retries(
    phone, client, app, app_context, monkeypatch
):
    project_id, token = phone
    xml, instance_id, case_uuid = screening_xml()
    post(client, project_id, token, xml)
    row = submission(instance_id)
    form_id = row.form_id

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # Fails after the case, person and consent rows were flushed.
    monkeypatch.setattr("server.cases.operations._derive", broken)
    with pytest.raises(RuntimeError):
        process_submission(form_id, instance_id)
    db.session.expire_all()
    assert case_by_uuid(case_uuid) is None
    assert db.session.scalar(select(func.count()).select_from(Consent)) == 0
    assert db.session.scalar(select(func.count()).select_from(MovementEvent)) == 0
    row = submission(instance_id)
    assert row.state == "failed" and "RuntimeError" in row.problem  # no job: the last attempt
    assert "disk on fire" not in row.problem, "messages may carry submitted values"

    monkeypatch.undo()
    assert process_submission(form_id, instance_id) == "normalized"
    assert case_by_uuid(case_uuid) is not None


def test_other_in_a_country_list_is_not_a_problem(phone, client, runner, app_context):
    """The form offers "other" with a text question; there is just no ISO code to keep."""
    project_id, token = phone
    xml, instance_id, case_uuid = screening_xml(citizenship="KHM other")
    xml = xml.replace(b"<ecountry>THA</ecountry>", b"<ecountry>other</ecountry>")
    post(client, project_id, token, xml)
    drain(runner)
    assert submission(instance_id).state == "normalized", submission(instance_id).problems
    case = case_by_uuid(case_uuid)
    assert case.person.citizenship == ["KHM"]
    assert [e.country for e in case.movement_events] == ["KHM", None]
