"""`casebridge submissions renormalize` after a mapping fix gives what a first run gives."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from server.cases.models import Case, Person
from server.extensions import db
from server.projects.models import Project
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

#: The designer's mistake: first names saved as middle names.
BUGGY_MD = SCREENING_MD.replace("cases#prs_FirstName", "cases#prs_MiddleName")
FIXED_V2_MD = SCREENING_MD.replace("| mini_screening    | 1 ", "| mini_screening    | 2 ")


def fieldwork() -> list[bytes]:
    """Three screenings (one refused), then two follow-ups of the first, one from a stale copy."""
    first, _, case_uuid = screening_xml(
        instance_id="uuid:s1", case_id="c0000000-0000-4000-8000-000000000001", first="Dara"
    )
    second, _, _ = screening_xml(
        instance_id="uuid:s2",
        case_id="c0000000-0000-4000-8000-000000000002",
        first="Mya",
        citizenship="MMR",
        gender="robot",
    )
    refused, _, _ = screening_xml(
        instance_id="uuid:s3", case_id="c0000000-0000-4000-8000-000000000003", consent="false"
    )
    closing = follow_up_xml(case_uuid, base_version=1, status="closed")[0].replace(
        b"<instanceID>uuid:", b"<instanceID>uuid:f1-"
    )
    stale = follow_up_xml(case_uuid, base_version=1, status="active", children="4")[0].replace(
        b"<instanceID>uuid:", b"<instanceID>uuid:f2-"
    )
    return [first, second, refused, closing, stale]


def snapshot() -> list[dict]:
    """What the cases say, without row ids, project ids or clocks."""
    db.session.expire_all()
    result = []
    for case in db.session.scalars(select(Case).order_by(Case.uuid)):
        person = case.person
        result.append(
            {
                "uuid": case.uuid,
                "case": (case.reference, case.label, case.status, case.version),
                "person": (
                    person.first_name,
                    person.middle_name,
                    person.second_name,
                    person.gender,
                    person.citizenship,
                    person.number_of_children,
                ),
                "episodes": [e.types_of_exploitation for e in case.episodes],
                "events": [(e.uuid, e.type, e.country) for e in case.movement_events],
                "consents": [(c.given, c.sharing, c.withdrawn) for c in case.consents],
                "versions": [
                    (v.version, v.changes, v.conflicts, v.base_version) for v in case.versions
                ],
            }
        )
    states = db.session.execute(
        select(Submission.instance_id, Submission.state, Submission.problems).order_by(
            Submission.id
        )
    ).all()
    return result + [[(i[:7], s, p) for i, s, p in states]]


def run_fieldwork(client, runner, project_id: int, token: str) -> None:
    for xml in fieldwork():
        assert post(client, project_id, token, xml).status_code == 201
        drain(runner)  # one by one: the order phones sent them in


def test_renormalizing_after_a_mapping_fix_equals_a_first_run(make, client, runner, app_context):
    # The first run, with the right mapping from the start.
    right = make.project("Right from the start")
    make.form(SCREENING_MD, project=right)
    make.form(FOLLOW_UP_MD, project=right)
    _, token = app_user_with_forms(right)
    run_fieldwork(client, runner, right.id, token)
    first_run = snapshot()
    assert first_run[0]["person"][0] == "Dara" and first_run[0]["case"][2] == "Closed"
    assert first_run[0]["versions"][-1][2] == ["cas_Status"], "the stale follow-up conflicts"
    db.session.execute(update(Submission).values(case_id=None))
    for case in db.session.scalars(select(Case)):
        db.session.delete(case)
    db.session.flush()
    db.session.execute(delete(Submission))
    db.session.execute(delete(Person))
    db.session.commit()

    # The same fieldwork with the designer's mistake, then the fix and a renormalization.
    fixed = make.project("Fixed later")
    make.form(BUGGY_MD, project=fixed)
    make.form(FOLLOW_UP_MD, project=fixed)
    _, token = app_user_with_forms(fixed)
    fixed_id = fixed.id
    run_fieldwork(client, runner, fixed_id, token)
    wrong = snapshot()
    assert wrong[0]["person"][:2] == (None, "Dara")
    make.form(FIXED_V2_MD, project=db.session.get(Project, fixed_id))

    result = runner.invoke(
        args=["submissions", "renormalize", "--form", "mini_screening", "--project", str(fixed_id)]
    )
    assert result.exit_code == 0, result.output
    assert "5 submission(s) applied again" in result.output
    assert "2 case(s) rebuilt" in result.output
    assert snapshot() == first_run

    again = runner.invoke(
        args=["submissions", "renormalize", "--form", "mini_screening", "--project", str(fixed_id)]
    )
    assert again.exit_code == 0 and snapshot() == first_run


def test_renormalize_names_a_missing_or_ambiguous_form(make, runner):
    project = make.project()
    make.form(SCREENING_MD, project=project)
    missing = runner.invoke(args=["submissions", "renormalize", "--form", "nope"])
    assert missing.exit_code != 0 and "No form with the id 'nope'" in missing.output
    other = make.project("Second")
    make.form(SCREENING_MD, project=other)
    both = runner.invoke(args=["submissions", "renormalize", "--form", "mini_screening"])
    assert both.exit_code != 0 and "give --project" in both.output


def test_renormalize_waits_for_the_queue(make, client, runner, app_context):
    """A submission still queued could be applied by a worker while its case is rebuilt."""
    project = make.project()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    project_id = project.id
    first, _, _ = screening_xml()
    post(client, project_id, token, first)
    drain(runner)
    second, _, case_uuid = screening_xml()
    post(client, project_id, token, second)  # queued, no worker yet
    busy = runner.invoke(args=["submissions", "renormalize", "--form", "mini_screening"])
    assert busy.exit_code != 0 and "1 submission(s) of these cases still wait" in busy.output
    assert db.session.scalar(select(Case).where(Case.uuid != case_uuid)) is not None
