"""The outbox at THA: a case made from a real screening is queued for KHM in the same
transaction, as much as consent and the allow-list let through, once per version."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select

from server.cases.models import Case, CaseVersion, Consent, new_uuid
from server.cases.operations import Outcome
from server.extensions import db
from sync.models import SyncOutbox
from sync.outbox import (
    change_id_for,
    record_case_change,
    record_case_deletion,
    record_normalization,
)
from tests.cases_support import SCREENING_MD, drain, post_screening
from tests.factories import app_user_with_forms
from tests.sync_support import mission, new_key, use_missions


@pytest.fixture
def tha(app, make, monkeypatch, tmp_path):
    """This app is THA with KHM and MMR as peers; a phone with the screening form."""
    use_missions(
        monkeypatch,
        app,
        tmp_path,
        "THA",
        [
            mission("THA", new_key()),
            mission("KHM", new_key(), fields=("prs_Gender", "prs_FirstName", "hte_Country")),
            mission("MMR", new_key(), fields=("prs_Gender",)),
        ],
    )
    project = make.project()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    return project.id, token


def screened_case(client, runner, phone, *, keep_outbox: bool = False, **answers) -> Case:
    """A case made by the real worker; by default without the outbox rows its
    normalization queued, so that a test can record the change itself."""
    case_uuid = post_screening(client, *phone, **answers)
    drain(runner)
    db.session.remove()
    if not keep_outbox:
        db.session.execute(delete(SyncOutbox))
        db.session.commit()
    return db.session.scalar(select(Case).where(Case.uuid == case_uuid))


def outbox() -> list[SyncOutbox]:
    return db.session.scalars(select(SyncOutbox).order_by(SyncOutbox.id)).all()


def test_a_screened_case_is_queued_for_the_source_mission_by_the_worker(
    client, runner, tha, app_context
):
    case = screened_case(client, runner, tha, keep_outbox=True)
    assert case.owner_mission == "THA"
    [stored] = outbox()  # written by the normalization job, in its transaction
    assert (stored.recipient_mission, stored.kind, stored.state, stored.version) == (
        "KHM",
        "upsert",
        "pending",
        1,
    )
    assert (stored.case_uuid, stored.origin_mission, stored.attempts) == (case.uuid, "THA", 0)
    assert stored.change_id == change_id_for("THA", case.uuid, 1, "KHM")
    assert stored.payload["case"]["fields"] == {"prs_Gender": "Feminine", "prs_FirstName": "Sokha"}
    assert [r["fields"] for r in stored.payload["records"]] == [
        {"hte_Country": "KHM"},
        {"hte_Country": "THA"},
    ]


def test_the_rows_belong_to_the_callers_transaction(client, runner, tha, app_context):
    case = screened_case(client, runner, tha)
    assert record_case_change(db.session, case, case.versions[-1])
    db.session.rollback()
    assert outbox() == []


def test_recording_the_same_version_twice_adds_nothing(client, runner, tha, app_context):
    case = screened_case(client, runner, tha)
    record_case_change(db.session, case, case.versions[-1])
    db.session.commit()
    assert record_case_change(db.session, case, case.versions[-1]) == []
    db.session.commit()
    assert len(outbox()) == 1


def test_without_consent_to_share_nothing_is_queued(client, runner, tha, app_context):
    case = screened_case(client, runner, tha)
    case.consents.append(Consent(uuid=new_uuid(), given=True, sharing=False))
    assert record_case_change(db.session, case, case.versions[-1]) == []


def test_a_withdrawal_queues_a_tombstone_for_the_mission_that_had_the_case(
    client, runner, tha, app_context
):
    case = screened_case(client, runner, tha, citizenship="KHM MMR")
    first = record_case_change(db.session, case, case.versions[-1])
    assert {r.recipient_mission for r in first} == {"KHM", "MMR"}
    for row in first:
        row.state = "acked"
    db.session.commit()

    case.consents.append(Consent(uuid=new_uuid(), given=False, sharing=False, withdrawn=True))
    case.version += 1
    version = CaseVersion(case=case, version=case.version, changes={"fields": {}})
    db.session.add(version)
    tombstones = record_case_change(db.session, case, version)
    db.session.commit()
    assert sorted((r.recipient_mission, r.kind, r.payload, r.version) for r in tombstones) == [
        ("KHM", "tombstone", {}, 2),
        ("MMR", "tombstone", {}, 2),
    ]

    case.version += 1  # a later change sends nothing more: they hold no copy now
    later = CaseVersion(case=case, version=case.version, changes={"fields": {}})
    db.session.add(later)
    assert record_case_change(db.session, case, later) == []


def test_a_case_another_mission_owns_goes_back_to_its_owner_with_what_changed_only(
    client, runner, tha, app_context
):
    """A copy held here (owned by MMR) and changed here: MMR gets this version's changes,
    as far as the allow-list lets them through; KHM, linked by citizenship, gets nothing
    (the owner relays)."""
    case = screened_case(client, runner, tha)
    case.owner_mission = "MMR"
    version = CaseVersion(
        case=case,
        version=case.version + 1,
        changes={"fields": {"prs_Gender": "Masculine", "prs_NumberOfChildren": 3}},
    )
    db.session.add(version)
    case.version += 1
    case.person.gender = "Masculine"
    [row] = record_case_change(db.session, case, version)
    assert (row.recipient_mission, row.kind, row.origin_mission) == ("MMR", "upsert", "THA")
    assert row.payload["case"] == {"owner_mission": "MMR", "fields": {"prs_Gender": "Masculine"}}
    assert row.payload["records"] == []

    unchanged = CaseVersion(case=case, version=case.version + 1, changes={"fields": {}})
    db.session.add(unchanged)
    case.version += 1
    assert record_case_change(db.session, case, unchanged) == []


def test_the_normalization_hook_queues_the_version_just_made(client, runner, tha, app_context):
    case = screened_case(client, runner, tha)
    assert record_normalization(db.session, Outcome(case=case, already_applied=True)) == []
    assert record_normalization(db.session, Outcome()) == []
    [row] = record_normalization(db.session, Outcome(case=case, version=case.versions[-1]))
    db.session.commit()
    assert (row.recipient_mission, row.version) == ("KHM", case.version)
    assert db.session.scalar(select(func.count()).select_from(SyncOutbox)) == 1


def test_deleting_a_shared_case_queues_tombstones_for_its_holders(client, runner, tha, app_context):
    case = screened_case(client, runner, tha)
    record_case_change(db.session, case, case.versions[-1])
    db.session.commit()
    case_uuid, next_version = case.uuid, case.version + 1  # deleting is the caller's part

    [row] = record_case_deletion(db.session, case_uuid, next_version)
    db.session.commit()
    assert (row.recipient_mission, row.kind, row.payload, row.version) == (
        "KHM",
        "tombstone",
        {},
        2,
    )
    assert record_case_deletion(db.session, case_uuid, next_version + 1) == []
