"""Transfers and referrals on one node (sync.transfers): as the owner THA (request, the
refusals, the answers it receives, revoking) and as the recipient KHM (the request's review
item, accepting, the case handed over). The other end's messages arrive as signed batches
through the real inbox."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.cases.models import Case, CaseVersion, Consent, Person
from server.extensions import db
from sync import review, transfers
from sync.models import SyncOutbox, SyncReview, SyncTransfer
from sync.signing import new_batch, sign_batch
from tests.sync_support import mission, new_key, use_missions
from tests.test_sync_apply_linkage import (  # noqa: F401 - fixtures used by name
    BIRTHDATE,
    encoding,
    registered,
    secret,
)

NAMES = ("Sokha", "Chan")
#: What THA may send each mission.
ALLOWED = {"KHM": ("prs_Gender", "prs_Birthdate", "cas_Status"), "MMR": ("prs_Gender",)}


@pytest.fixture
def keys() -> dict:
    return {code: new_key() for code in ("THA", "KHM", "MMR")}


def missions(keys: dict, own: str) -> list:
    return [
        mission(code, key, fields=ALLOWED.get(code, ()) if own == "THA" else ())
        for code, key in keys.items()
    ]


@pytest.fixture
def as_tha(app, monkeypatch, tmp_path, keys, secret):  # noqa: F811
    use_missions(monkeypatch, app, tmp_path, "THA", missions(keys, "THA"), keys["THA"])


@pytest.fixture
def as_khm(app, monkeypatch, tmp_path, keys, secret):  # noqa: F811
    use_missions(monkeypatch, app, tmp_path, "KHM", missions(keys, "KHM"), keys["KHM"])


def new_case(make, owner="THA", recipients=("KHM", "MMR"), **consent) -> Case:
    """A case of THA's, about a Thai citizen exploited in Thailand: linked to no other
    mission, so only missions the consent names may be asked."""
    project = make.project()
    person = Person(
        uuid=str(uuid.uuid4()),
        first_name=NAMES[0],
        second_name=NAMES[1],
        birthdate=BIRTHDATE,
        birth_year=BIRTHDATE.year,
        gender="Feminine",
        citizenship=["THA"],
    )
    case = Case(
        uuid=str(uuid.uuid4()),
        project_id=project.id,
        person=person,
        owner_mission=owner,
        status="Active",
        version=1,
    )
    statement = {
        "given": True,
        "sharing": True,
        "purposes": [],
        "recipient_missions": list(recipients),
        "withdrawn": False,
    }
    case.consents.append(Consent(uuid=str(uuid.uuid4()), **(statement | consent)))
    case.versions.append(CaseVersion(version=1, changes={"create": True}, conflicts=[]))
    db.session.add(case)
    db.session.commit()
    return case


def deliver(client, key, sender: str, recipient: str, *changes) -> list[str]:
    envelope = sign_batch(new_batch(sender, recipient, list(changes)), key)
    response = client.post(
        "/sync/v1/inbox", data=json.dumps(envelope), content_type="application/json"
    )
    assert response.status_code == 200, response.json
    return [ack["status"] for ack in response.json["acks"]]


def message(kind: str, case_uuid: str, origin: str, payload: dict, version: int = 1) -> dict:
    return {
        "change_id": str(uuid.uuid4()),
        "case_uuid": case_uuid,
        "origin_mission": origin,
        "version": version,
        "kind": kind,
        "payload": payload,
    }


def sent(kind: str | None = None) -> list[SyncOutbox]:
    query = select(SyncOutbox).order_by(SyncOutbox.id)
    if kind is not None:
        query = query.where(SyncOutbox.kind == kind)
    return db.session.scalars(query).all()


def fresh(row):
    db.session.expire_all()
    return db.session.get(type(row), row.id)


def events(prefix: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action.like(f"{prefix}%"))
    return db.session.scalars(query.order_by(AuditEvent.id)).all()


# ---- the owner: asking ------------------------------------------------------------------


def test_a_request_sends_the_persons_encoding_and_nothing_else_of_the_case(as_tha, make):
    case = new_case(make)
    admin = make.user("admin")
    transfer = transfers.request(case, "transfer", "KHM", admin, "services", address="10.0.0.7")
    db.session.commit()

    assert (transfer.state, transfer.from_mission, transfer.to_mission) == (
        "pending",
        "THA",
        "KHM",
    )
    [row] = sent()
    assert (row.kind, row.recipient_mission, row.case_uuid) == (
        "transfer_request",
        "KHM",
        case.uuid,
    )
    assert set(row.payload) == {"transfer", "kind", "reason", "linkage"}, "no case fields"
    assert row.payload["linkage"]["ref"] == case.uuid
    assert (row.payload["kind"], row.payload["reason"]) == ("transfer", "services")
    assert not any(name in json.dumps(row.payload) for name in NAMES)
    assert "1995" not in json.dumps(row.payload) and "Feminine" not in json.dumps(row.payload)
    [event] = events("transfer.")
    assert (event.action, event.user_id, event.object_id, event.address) == (
        "transfer.request",
        admin.id,
        case.uuid,
        "10.0.0.7",
    )
    assert event.details == {
        "transfer": transfer.uuid,
        "from": "THA",
        "to": "KHM",
        "reason": "services",
        "via": "page",
    }
    assert fresh(case).owner_mission == "THA", "nothing moves before the recipient accepts"


@pytest.mark.parametrize(
    ("owner", "to", "reason", "consent", "message"),
    [
        ("KHM", "MMR", "services", {}, "Only the owner (KHM)"),
        ("THA", "LAO", "services", {}, "LAO is not a registered mission"),
        ("THA", "THA", "services", {}, "already THA's"),
        ("THA", "KHM", "because", {}, "Choose a reason"),
        ("THA", "KHM", "services", {"withdrawn": True}, "consent does not allow"),
        ("THA", "KHM", "services", {"sharing": False}, "consent does not allow"),
        ("THA", "KHM", "services", {"recipient_missions": ["MMR"]}, "consent does not allow"),
        ("THA", "KHM", "services", {"recipient_missions": []}, "unless it is a linked one"),
    ],
)
def test_refusals(as_tha, make, owner, to, reason, consent, message):
    case = new_case(make, owner=owner, **consent)
    admin = make.user("admin")
    with pytest.raises(transfers.TransferRefused, match=re.escape(message)):
        transfers.request(case, "transfer", to, admin, reason)
    db.session.rollback()
    assert sent() == [] and db.session.scalars(select(SyncTransfer)).all() == []


def test_a_linked_mission_needs_no_naming(as_tha, make):
    case = new_case(make, recipients=())
    case.person.citizenship = ["KHM"]  # the source country: KHM is linked
    transfers.request(case, "referral", "KHM", make.user("admin"), "return")
    assert [r.kind for r in sent()] == ["transfer_request"]


def test_one_pending_transfer_per_case_and_one_referral_per_mission(as_tha, make):
    case = new_case(make)
    admin = make.user("admin")
    transfers.request(case, "transfer", "KHM", admin, "services")
    with pytest.raises(transfers.TransferRefused, match="A transfer to KHM is pending"):
        transfers.request(case, "transfer", "MMR", admin, "services")
    transfers.request(case, "referral", "MMR", admin, "legal")
    with pytest.raises(transfers.TransferRefused, match="referral to MMR is pending"):
        transfers.request(case, "referral", "MMR", admin, "legal")
    assert len(sent("transfer_request")) == 2


# ---- the owner: the recipient's answer --------------------------------------------------


def requested(make, kind="transfer", to="KHM"):
    case = new_case(make)
    transfer = transfers.request(case, kind, to, make.user("admin"), "services")
    db.session.commit()
    return case, transfer


def answer(kind: str, transfer: SyncTransfer, origin: str = "KHM") -> dict:
    return message(kind, transfer.case_uuid, origin, {"transfer": transfer.uuid})


def test_an_accepted_transfer_makes_the_recipient_owner_and_hands_it_the_case(
    as_tha, make, client, keys
):
    case, transfer = requested(make)
    accepted = answer("transfer_accept", transfer)
    assert deliver(client, keys["KHM"], "KHM", "THA", accepted) == ["applied"]
    assert deliver(client, keys["KHM"], "KHM", "THA", accepted) == ["duplicate"]

    case = fresh(case)
    assert fresh(transfer).state == "accepted" and case.owner_mission == "KHM"
    assert case.version == 2 and case.versions[-1].changes == {
        "owner_mission": {"from": "THA", "to": "KHM"}
    }
    [handed] = sent("transfer_case")
    assert (handed.recipient_mission, handed.version) == ("KHM", 2)
    fields = handed.payload["case"]["fields"]
    assert set(fields) == {"prs_Gender", "prs_Birthdate", "cas_Status"}, "the link's allow-list"
    assert handed.payload["case"]["owner_mission"] == "KHM"
    assert handed.payload["transfer"] == transfer.uuid
    assert handed.payload["consent_statement"]["recipient_missions"] == ["KHM", "MMR"]
    assert not any(name in json.dumps(handed.payload) for name in NAMES)
    assert [e.action for e in events("transfer.")] == ["transfer.request", "transfer.accept"]
    assert events("transfer.")[-1].details["via"] == "sync"


def test_a_rejected_transfer_leaves_the_case_with_its_owner(as_tha, make, client, keys):
    case, transfer = requested(make)
    assert deliver(client, keys["KHM"], "KHM", "THA", answer("transfer_reject", transfer)) == [
        "applied"
    ]
    assert fresh(transfer).state == "rejected" and fresh(case).owner_mission == "THA"
    assert [r.kind for r in sent()] == ["transfer_request"], "nothing of the case was sent"


def test_an_answer_from_another_mission_is_ignored(as_tha, make, client, keys):
    _, transfer = requested(make)
    forged = answer("transfer_accept", transfer, origin="MMR")
    assert deliver(client, keys["MMR"], "MMR", "THA", forged) == ["ignored"]
    assert fresh(transfer).state == "pending"


def test_revoke_before_the_accept_arrives_wins(as_tha, make, client, keys):
    case, transfer = requested(make)
    admin = make.user("admin")
    transfers.revoke(transfer, admin)
    db.session.commit()
    [revoked] = sent("transfer_revoke")
    assert revoked.recipient_mission == "KHM" and revoked.payload == {"transfer": transfer.uuid}

    late = answer("transfer_accept", transfer)
    assert deliver(client, keys["KHM"], "KHM", "THA", late) == ["applied"]
    assert fresh(transfer).state == "revoked" and fresh(case).owner_mission == "THA"
    assert sent("transfer_case") == [], "never two owners"
    assert len(sent("transfer_revoke")) == 1, "the revocation already sent answers it"
    with pytest.raises(transfers.TransferRefused, match="revoked already"):
        transfers.revoke(fresh(transfer), admin)


def test_a_revoke_racing_the_accept_finds_it_accepted_and_changes_nothing(
    as_tha, make, client, keys
):
    """The admin's page loaded the transfer while pending; the accept is processed first
    (another session, as the inbox would): the revocation is refused, one owner."""
    case, transfer = requested(make)
    assert transfer.state == "pending"  # as the page read it
    assert deliver(client, keys["KHM"], "KHM", "THA", answer("transfer_accept", transfer)) == [
        "applied"
    ]
    with pytest.raises(transfers.TransferRefused, match="accepted"):
        transfers.revoke(transfer, make.user("admin"))
    db.session.rollback()
    assert fresh(transfer).state == "accepted" and fresh(case).owner_mission == "KHM"
    assert sent("transfer_revoke") == [] and len(sent("transfer_case")) == 1


def test_an_accepted_transfer_cannot_be_revoked(as_tha, make, client, keys):
    _, transfer = requested(make)
    deliver(client, keys["KHM"], "KHM", "THA", answer("transfer_accept", transfer))
    with pytest.raises(transfers.TransferRefused, match="KHM owns the case now"):
        transfers.revoke(fresh(transfer), make.user("admin"))


def test_an_accepted_referral_shares_the_case_and_revoking_it_withdraws_the_copy(
    as_tha, make, client, keys
):
    case, referral = requested(make, kind="referral", to="MMR")
    assert deliver(client, keys["MMR"], "MMR", "THA", answer("transfer_accept", referral, "MMR"))
    case = fresh(case)
    assert case.owner_mission == "THA", "a referral keeps the owner"
    [upsert] = sent("upsert")
    assert upsert.recipient_mission == "MMR"
    assert set(upsert.payload["case"]["fields"]) == {"prs_Gender"}, "MMR's allow-list"

    transfers.revoke(fresh(referral), make.user("admin"))
    db.session.commit()
    assert fresh(referral).state == "revoked"
    assert [(r.kind, r.recipient_mission) for r in sent()][-2:] == [
        ("transfer_revoke", "MMR"),
        ("tombstone", "MMR"),
    ]
    assert [e.action for e in events("referral.")] == [
        "referral.request",
        "referral.accept",
        "referral.revoke",
    ]


# ---- the recipient ----------------------------------------------------------------------


def request_from_tha(secret, case_uuid: str, kind: str = "transfer") -> dict:  # noqa: F811
    return message(
        "transfer_request",
        case_uuid,
        "THA",
        {
            "transfer": str(uuid.uuid4()),
            "kind": kind,
            "reason": "services",
            "linkage": encoding(secret, "Srey Pov", "Chorn", ref=case_uuid),
        },
    )


@pytest.fixture
def received(as_khm, client, keys, registered, secret):  # noqa: F811
    """KHM (this app) received THA's request to take a case whose person it registered."""
    case_uuid = str(uuid.uuid4())
    change = request_from_tha(secret, case_uuid)
    assert deliver(client, keys["THA"], "THA", "KHM", change) == ["applied"]
    assert deliver(client, keys["THA"], "THA", "KHM", change) == ["duplicate"]
    return change


def test_a_request_opens_a_review_item_with_candidates_and_no_case(received, registered):  # noqa: F811
    case_uuid = received["case_uuid"]
    [item] = review.open_reviews()
    assert (item.kind, item.reason, item.from_mission, item.case) == (
        "transfer",
        "services",
        "THA",
        None,
    )
    [candidate] = item.candidates
    assert candidate.person_id == registered.id and candidate.reason == "birthdate"
    assert db.session.scalar(select(Case).where(Case.uuid == case_uuid)) is None
    [transfer] = db.session.scalars(select(SyncTransfer)).all()
    assert (transfer.uuid, transfer.state, transfer.requested_by) == (
        received["payload"]["transfer"],
        "pending",
        None,
    )


def handed_over(request_change: dict) -> dict:
    return message(
        "transfer_case",
        request_change["case_uuid"],
        "THA",
        {
            "transfer": request_change["payload"]["transfer"],
            "case": {
                "owner_mission": "KHM",
                "fields": {"prs_Gender": "Feminine", "cas_Status": "Active"},
            },
            "consent": {"purposes": []},
            "records": [],
            "consent_statement": {
                "given": True,
                "sharing": True,
                "research": None,
                "purposes": [],
                "recipient_missions": ["KHM"],
                "withdrawn": False,
            },
        },
        version=2,
    )


def test_accepting_answers_the_owner_and_the_case_arrives_as_ours(
    received,
    registered,  # noqa: F811
    make,
    client,
    keys,
):
    admin = make.user("admin")
    [item] = review.open_reviews()
    review.accept(item.id, admin, registered.id, address="10.0.0.9")
    db.session.commit()
    [answered] = sent()
    assert (answered.kind, answered.recipient_mission, answered.payload) == (
        "transfer_accept",
        "THA",
        {"transfer": received["payload"]["transfer"]},
    )
    assert [e.action for e in events("")] == ["transfer.accept", "review.accept"]
    assert all(e.address == "10.0.0.9" for e in events(""))

    assert deliver(client, keys["THA"], "THA", "KHM", handed_over(received)) == ["applied"]
    db.session.expire_all()
    case = db.session.scalar(select(Case).where(Case.uuid == received["case_uuid"]))
    assert case.owner_mission == "KHM" and case.person_id == registered.id
    assert case.status == "Active"
    assert case.consent.recipient_missions == ["KHM"], "the consent statement in force"
    assert case.person.first_name == "Sreypov", "KHM's own person, values kept"


def test_a_case_handed_over_without_an_acceptance_is_ignored(received, client, keys):
    assert deliver(client, keys["THA"], "THA", "KHM", handed_over(received)) == ["ignored"]
    assert db.session.scalar(select(Case).where(Case.uuid == received["case_uuid"])) is None


def test_rejecting_answers_the_owner(received, make):
    [item] = review.open_reviews()
    review.reject(item.id, make.user("admin"))
    db.session.commit()
    assert [(r.kind, r.payload) for r in sent()] == [
        ("transfer_reject", {"transfer": received["payload"]["transfer"]})
    ]
    assert fresh(db.session.scalar(select(SyncTransfer))).state == "rejected"


def test_a_revoked_request_closes_the_item(received, make, client, keys):
    revoked = message(
        "transfer_revoke",
        received["case_uuid"],
        "THA",
        {"transfer": received["payload"]["transfer"]},
    )
    assert deliver(client, keys["THA"], "THA", "KHM", revoked) == ["applied"]
    assert review.open_reviews() == []
    item = db.session.scalar(select(SyncReview))
    assert item.state == "revoked" and item.decided_at is not None
    with pytest.raises(review.ReviewClosed, match="was revoked already"):
        review.accept(item.id, make.user("admin"))
    assert sent() == []


def test_a_malformed_request_is_invalid(as_khm, app_context, client, keys, secret):  # noqa: F811
    bad = request_from_tha(secret, str(uuid.uuid4()))
    bad["payload"]["reason"] = "Her brother Sokha asked"  # free text is not a reason code
    assert deliver(client, keys["THA"], "THA", "KHM", bad) == ["invalid"]
    assert db.session.scalars(select(SyncReview)).all() == []


def test_decided_at_is_set_when_closed(as_tha, make):
    _, transfer = requested(make)
    assert transfer.decided_at is None
    transfers.revoke(transfer, make.user("admin"))
    assert isinstance(transfer.decided_at, dt.datetime)
