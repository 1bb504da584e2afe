"""Changes from THA applied at KHM (this app): copies of THA's cases, in version order,
with the field table's travelling fields only; a tombstone withdraws the copy."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from server.cases.entity_list import case_list
from server.cases.models import Assistance, Case, CaseVersion, Consent, MovementEvent, Person
from server.extensions import db
from sync.models import SyncAppliedVersion, SyncInboxChange, SyncOutbox
from sync.signing import new_batch, sign_batch
from tests.sync_support import as_khm_knowing_tha, new_key

CASE = str(uuid.uuid4())
EVENT = str(uuid.uuid4())


@pytest.fixture
def tha_key(app, monkeypatch, tmp_path):
    """This app is KHM; THA is its registered peer. Returns THA's signing key."""
    key = new_key()
    as_khm_knowing_tha(monkeypatch, app, tmp_path, key)
    return key


def upsert(version: int, fields: dict, records=(), *, case_uuid=CASE, owner="THA", **extra):
    return {
        "change_id": str(uuid.uuid4()),
        "case_uuid": case_uuid,
        "origin_mission": "THA",
        "version": version,
        "kind": "upsert",
        "payload": {
            "case": {"owner_mission": owner, "fields": fields},
            "consent": {"purposes": ["CaseManagement"]},
            "records": list(records),
        },
        **extra,
    }


def tombstone(version: int, case_uuid=CASE) -> dict:
    return {
        "change_id": str(uuid.uuid4()),
        "case_uuid": case_uuid,
        "origin_mission": "THA",
        "version": version,
        "kind": "tombstone",
        "payload": {},
    }


def event(country: str = "THA") -> dict:
    return {
        "dataset": "movement_events",
        "uuid": EVENT,
        "fields": {"hte_Type": "Exploitation", "hte_Country": country, "hte_Date": "2024-02-01"},
    }


def deliver(client, key, *changes) -> list[str]:
    envelope = sign_batch(new_batch("THA", "KHM", list(changes)), key)
    response = client.post(
        "/sync/v1/inbox", data=json.dumps(envelope), content_type="application/json"
    )
    assert response.status_code == 200, response.json
    return [ack["status"] for ack in response.json["acks"]]


def the_case() -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.uuid == CASE))


def test_an_owners_upsert_makes_a_copy_with_the_travelling_fields_only(
    client, tha_key, app_context
):
    change = upsert(
        1,
        {
            "prs_Gender": "Feminine",
            "prs_Birthdate": "1995-04-02",
            "prs_Citizenship": ["KHM"],
            "cas_Reference": "CB-1",
            "vic_TraffickingStatus": "ActualVictimOfTrafficking",
            "prs_MobilePhone": "+855 12 345 678",  # local-only: never lands
            "prs_Nickname": "x",  # not in the field table
        },
        [event()],
    )
    assert deliver(client, tha_key, change) == ["applied"]
    case = the_case()
    assert (case.owner_mission, case.version, case.reference, case.label) == (
        "THA",
        1,
        "CB-1",
        "CB-1",
    )
    person = case.person
    assert (person.gender, str(person.birthdate), person.citizenship, person.birth_year) == (
        "Feminine",
        "1995-04-02",
        ["KHM"],
        1995,
    )
    assert person.mobile_phone is None
    assert case.victim.trafficking_status == "ActualVictimOfTrafficking"
    assert [(e.uuid, e.type, e.country) for e in case.movement_events] == [
        (EVENT, "Exploitation", "THA")
    ]
    [version] = case.versions
    assert (version.submission_id, version.sync_change_id) == (None, change["change_id"])
    assert version.changes["origin_mission"] == "THA" and version.changes["create"] is True
    assert "prs_MobilePhone" not in version.changes["fields"]
    assert (case.consent.recipient_missions, case.consent.purposes) == (
        ["THA"],
        ["CaseManagement"],
    )


def test_an_older_version_arriving_late_is_kept_but_not_applied(client, tha_key, app_context):
    newer, older = upsert(2, {"prs_Gender": "Masculine"}), upsert(1, {"prs_Gender": "Feminine"})
    assert deliver(client, tha_key, newer) == ["applied"]
    assert deliver(client, tha_key, older, newer) == ["stale", "duplicate"]
    case = the_case()
    assert case.person.gender == "Masculine" and case.version == 1
    assert db.session.scalar(select(func.count()).select_from(SyncInboxChange)) == 2
    applied = db.session.get(SyncAppliedVersion, (CASE, "THA"))
    assert (applied.version, applied.change_id) == (2, newer["change_id"])


def test_an_upsert_that_changes_nothing_makes_no_version(client, tha_key, app_context):
    assert deliver(client, tha_key, upsert(1, {"prs_Gender": "Feminine"})) == ["applied"]
    assert deliver(client, tha_key, upsert(2, {"prs_Gender": "Feminine"})) == ["applied"]
    assert the_case().version == 1


def test_a_bad_value_refuses_the_change_alone_and_keeps_nothing_of_it(client, tha_key, app_context):
    bad = upsert(1, {"prs_Gender": "Robot"})
    good = upsert(1, {"prs_Gender": "Feminine"}, case_uuid=str(uuid.uuid4()))
    assert deliver(client, tha_key, bad, good) == ["invalid", "applied"]
    assert the_case() is None
    stored = db.session.scalars(select(SyncInboxChange.change_id)).all()
    assert stored == [good["change_id"]]
    for fields, records in (
        ({"prs_Birthdate": "2 April 1995"}, []),
        ({"prs_NumberOfChildren": "two"}, []),
        ({"prs_Citizenship": "KHM"}, []),
        ({}, [{"dataset": "cases", "uuid": str(uuid.uuid4()), "fields": {}}]),
        ({}, [{**event(), "fields": {"hte_Type": "Holiday"}}]),
    ):
        assert deliver(client, tha_key, upsert(1, fields, records)) == ["invalid"]
    assert the_case() is None


def test_a_copy_of_a_case_its_sender_does_not_own_is_ignored(client, tha_key, app_context):
    assert deliver(client, tha_key, upsert(1, {"prs_Gender": "Feminine"}, owner="MMR")) == [
        "ignored"
    ]
    assert the_case() is None


def test_a_tombstone_withdraws_the_copy_and_keeps_this_missions_own_records(
    client, tha_key, app_context
):
    deliver(client, tha_key, upsert(1, {"prs_Gender": "Feminine", "cas_Reference": "CB-1"}))
    deliver(client, tha_key, upsert(2, {"prs_Birthdate": "1995-04-02"}, [event()]))
    case = the_case()
    ours = Assistance(uuid=str(uuid.uuid4()), provider_name="KHM shelter")
    case.assistance.append(ours)  # what this mission did for her: its own record
    db.session.commit()

    assert CASE in case_list(case.project_id).content.decode()
    assert deliver(client, tha_key, tombstone(3)) == ["applied"]
    assert CASE not in case_list(case.project_id).content.decode(), "off the phones' lists"
    case = the_case()
    person = case.person
    assert (person.gender, person.birthdate, person.birth_year) == (None, None, None)
    assert case.reference is None and case.movement_events == []
    assert [a.provider_name for a in case.assistance] == ["KHM shelter"]
    assert case.consent.withdrawn is True and case.consent.sharing is False
    assert db.session.scalar(select(func.count()).select_from(MovementEvent)) == 0
    payloads = db.session.scalars(select(SyncInboxChange.payload)).all()
    assert payloads == [{}, {}, {}], "what THA sent is not kept either"
    changes = [v.changes for v in case.versions]
    assert changes[:2] == [{"origin_mission": "THA", "erased": True}] * 2
    assert changes[2] == {"origin_mission": "THA", "withdrawn": True}

    late = upsert(2, {"prs_Gender": "Feminine"})  # an older change, resent after
    assert deliver(client, tha_key, late) == ["stale"]
    assert the_case().person.gender is None
    kept = db.session.scalar(
        select(SyncInboxChange.payload).where(SyncInboxChange.change_id == late["change_id"])
    )
    assert kept == {}, "a late copy of withdrawn data is not kept"
    again = upsert(4, {"prs_Gender": "Feminine"})  # consent given again at THA
    assert deliver(client, tha_key, again) == ["applied"]
    assert the_case().person.gender == "Feminine" and the_case().consent.withdrawn is False


def test_a_tombstone_never_touches_this_missions_own_case(client, tha_key, app_context, make):
    project = make.project()
    person = Person(uuid=str(uuid.uuid4()), gender="Feminine", citizenship=[])
    own = Case(uuid=CASE, project_id=project.id, person=person, owner_mission="KHM", version=1)
    db.session.add(own)
    db.session.commit()
    assert deliver(client, tha_key, tombstone(5)) == ["ignored"]
    assert deliver(client, tha_key, upsert(6, {"prs_Gender": "Masculine"})) == ["ignored"]
    # A follow-up of our case from a mission we never shared it with.
    assert deliver(client, tha_key, upsert(7, {"prs_Gender": "Masculine"}, owner="KHM")) == [
        "ignored"
    ]
    case = the_case()
    assert case.person.gender == "Feminine" and case.version == 1
    assert db.session.scalar(select(func.count()).select_from(CaseVersion)) == 0


def test_a_tombstone_for_a_case_never_received_keeps_older_upserts_out(
    client, tha_key, app_context
):
    assert deliver(client, tha_key, tombstone(2)) == ["applied"]
    assert deliver(client, tha_key, upsert(1, {"prs_Gender": "Feminine"})) == ["stale"]
    assert the_case() is None


def test_a_follow_up_of_our_case_by_a_mission_we_share_it_with_is_applied_and_routed(
    client, tha_key, app_context, make
):
    """KHM owns the case and shared it with THA; THA's follow-up becomes KHM's version 2,
    which KHM routes as usual (here back to THA, the only linked mission)."""
    project = make.project()
    own = Case(
        uuid=CASE,
        project_id=project.id,
        person=Person(uuid=str(uuid.uuid4()), citizenship=["KHM"]),
        owner_mission="KHM",
        version=1,
        movement_events=[MovementEvent(uuid=EVENT, type="Exploitation", country="THA")],
        consents=[Consent(uuid=str(uuid.uuid4()), given=True, sharing=True)],
    )
    db.session.add(own)
    db.session.add(
        SyncOutbox(
            change_id=str(uuid.uuid4()),
            case_uuid=CASE,
            recipient_mission="THA",
            origin_mission="KHM",
            version=1,
            kind="upsert",
            payload={},
            state="acked",
        )
    )
    db.session.commit()

    follow_up = upsert(3, {"cas_ReintegrationStatus": "Reintegrated"}, owner="KHM")
    assert deliver(client, tha_key, follow_up) == ["applied"]
    case = the_case()
    assert (case.reintegration_status, case.version, case.owner_mission) == (
        "Reintegrated",
        2,
        "KHM",
    )
    assert case.versions[-1].sync_change_id == follow_up["change_id"]
    routed = db.session.scalars(select(SyncOutbox).order_by(SyncOutbox.id)).all()
    assert [(r.recipient_mission, r.kind, r.version, r.origin_mission) for r in routed] == [
        ("THA", "upsert", 1, "KHM"),
        ("THA", "upsert", 2, "KHM"),
    ]
