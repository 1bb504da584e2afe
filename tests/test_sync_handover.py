"""After a transfer, the other copies follow the new owner (issue 5).

At the old owner THA: accepting KHM's answer tells MMR, which held a copy, that KHM owns
the case now (an upsert naming KHM, no field), and THA's next follow-up, as a copy, does
not tombstone MMR. At a copy (MMR, this app): the owner's word is taken, anyone else's is
not, nor a word making MMR itself the owner; a replay changes nothing.
"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from server.cases.models import Case, Consent
from server.extensions import db
from sync import review, transfers
from sync.models import SyncAppliedVersion, SyncInboxChange, SyncTransfer
from sync.outbox import change_id_for
from tests.sync_support import mission, use_missions
from tests.test_sync_apply_linkage import registered, secret  # noqa: F401 - fixtures by name
from tests.test_sync_transfers import (  # noqa: F401 - fixtures used by name
    NAMES,
    answer,
    as_khm,
    as_tha,
    deliver,
    events,
    fresh,
    handed_over,
    keys,
    message,
    received,
    requested,
    sent,
)

# ---- the old owner ----------------------------------------------------------------------


def shared_with_mmr_then_transferred(make, client, keys) -> Case:  # noqa: F811
    """THA's case, referred to MMR (which holds a copy), then transferred to KHM."""
    case, referral = requested(make, kind="referral", to="MMR")
    deliver(client, keys["MMR"], "MMR", "THA", answer("transfer_accept", referral, "MMR"))
    transfer = transfers.request(fresh(case), "transfer", "KHM", make.user("admin"), "services")
    db.session.commit()
    assert deliver(client, keys["KHM"], "KHM", "THA", answer("transfer_accept", transfer)) == [
        "applied"
    ]
    return fresh(case)


def test_accepting_a_transfer_tells_the_other_copies_who_owns_the_case(
    as_tha,  # noqa: F811
    make,
    client,
    keys,  # noqa: F811
):
    case = shared_with_mmr_then_transferred(make, client, keys)
    assert case.owner_mission == "KHM"
    shared, told = sent("upsert")
    assert (shared.recipient_mission, told.recipient_mission) == ("MMR", "MMR")
    assert told.version == case.version, "the version recording the transfer"
    assert told.payload["case"] == {"owner_mission": "KHM", "fields": {}}
    assert told.payload["records"] == [] and "consent" not in told.payload
    assert not any(name in json.dumps(told.payload) for name in NAMES)
    assert [r.recipient_mission for r in sent("transfer_case")] == ["KHM"]


def test_the_old_owner_still_opens_its_copy_before_the_new_owner_sends_anything(
    as_tha,  # noqa: F811
    make,
    client,
    keys,  # noqa: F811
    admin_client,
):
    """THA keeps a copy of what it handed over (its own submissions, its follow-ups):
    its case page and list show it, before and after the new owner's first upsert, and
    not once the new owner withdrew it (a tombstone)."""
    case = shared_with_mmr_then_transferred(make, client, keys)
    assert admin_client.get(f"/cases/{case.uuid}").status_code == 200
    assert f'href="/cases/{case.uuid}"' in admin_client.get("/cases").text

    change = message("upsert", case.uuid, "KHM", {"case": {"owner_mission": "KHM"}}, 1)
    assert deliver(client, keys["KHM"], "KHM", "THA", change) == ["applied"]
    assert admin_client.get(f"/cases/{case.uuid}").status_code == 200
    withdrawn = message("tombstone", case.uuid, "KHM", {}, 2)
    assert deliver(client, keys["KHM"], "KHM", "THA", withdrawn) == ["applied"]
    assert admin_client.get(f"/cases/{case.uuid}").status_code == 404


def test_the_old_owners_follow_up_goes_to_the_new_owner_and_tombstones_no_copy(
    as_tha,  # noqa: F811
    make,
    client,
    keys,  # noqa: F811
):
    case = shared_with_mmr_then_transferred(make, client, keys)
    before = len(sent())
    case.status = "Closed"
    transfers.new_version(case, {"fields": {"cas_Status": "Closed"}}, route=True)
    db.session.commit()
    assert [(r.kind, r.recipient_mission) for r in sent()[before:]] == [("upsert", "KHM")]
    assert sent("tombstone") == []


def referrals() -> list[SyncTransfer]:
    db.session.expire_all()
    query = select(SyncTransfer).where(SyncTransfer.kind == "referral")
    return db.session.scalars(query.order_by(SyncTransfer.id)).all()


def test_the_old_owner_hands_its_accepted_referrals_to_the_new_owner(
    as_tha,  # noqa: F811
    make,
    client,
    keys,  # noqa: F811
):
    """Was: THA kept its referral to MMR; KHM, the new owner, did not know of it, so MMR's
    copy (following KHM) was never updated, withdrawn, or heard."""
    shared_with_mmr_then_transferred(make, client, keys)
    [referral] = referrals()
    [handed] = sent("transfer_case")
    assert handed.payload["referrals"] == [
        {"transfer": referral.uuid, "to": "MMR", "reason": "services"}
    ]
    assert (referral.from_mission, referral.to_mission, referral.state) == (
        "KHM",
        "MMR",
        "accepted",
    )
    assert not transfers.may_revoke(referral, "THA")
    with pytest.raises(transfers.TransferRefused, match="Only the mission that asked"):
        transfers.revoke(referral, make.user("admin"))
    handover = events("referral.")[-1]
    assert (handover.action, handover.details["from"], handover.details["to"]) == (
        "referral.handover",
        "KHM",
        "MMR",
    )


# ---- the new owner ----------------------------------------------------------------------

REFERRAL = str(uuid.uuid4())


def taken_over(received, registered, make, client, keys, recipients, handed=None):  # noqa: F811
    """KHM (this app) accepted THA's transfer; THA hands the case over with its referral to
    MMR and a consent statement naming `recipients` (empty: every mission)."""
    [item] = review.open_reviews()
    review.accept(item.id, make.user("admin"), registered.id)
    db.session.commit()
    change = handed_over(received)
    change["payload"]["consent_statement"]["recipient_missions"] = recipients
    change["payload"]["referrals"] = handed or [
        {"transfer": REFERRAL, "to": "MMR", "reason": "services"}
    ]
    return deliver(client, keys["THA"], "THA", "KHM", change)


def test_the_new_owner_routes_to_the_referred_mission_and_may_end_the_referral(
    received,  # noqa: F811
    registered,  # noqa: F811
    make,
    client,
    keys,  # noqa: F811
):
    assert taken_over(received, registered, make, client, keys, []) == ["applied"]
    [referral] = referrals()
    assert (referral.uuid, referral.from_mission, referral.to_mission, referral.state) == (
        REFERRAL,
        "KHM",
        "MMR",
        "accepted",
    )
    assert events("referral.")[-1].action == "referral.handover"
    assert [(r.kind, r.recipient_mission) for r in sent() if r.recipient_mission == "MMR"] == [
        ("upsert", "MMR")
    ], "the copy MMR holds is KHM's to update now"

    transfers.revoke(referral, make.user("admin"))
    db.session.commit()
    to_mmr = [(r.kind, r.payload.get("transfer")) for r in sent() if r.recipient_mission == "MMR"]
    assert to_mmr[1:] == [("transfer_revoke", REFERRAL), ("tombstone", None)]


def test_the_new_owner_withdraws_a_referred_copy_its_consent_does_not_cover(
    received,  # noqa: F811
    registered,  # noqa: F811
    make,
    client,
    keys,  # noqa: F811
):
    assert taken_over(received, registered, make, client, keys, ["KHM"]) == ["applied"]
    assert [(r.kind, r.recipient_mission) for r in sent() if r.recipient_mission == "MMR"] == [
        ("tombstone", "MMR")
    ]


@pytest.mark.parametrize(
    "handed",
    [
        [{"transfer": REFERRAL, "to": "LAO", "reason": "services"}],
        [{"transfer": REFERRAL, "to": "KHM", "reason": "services"}],
    ],
    ids=["unregistered", "this-mission"],
)
def test_a_referral_to_no_mission_this_one_reaches_is_left_out(
    received,  # noqa: F811
    registered,  # noqa: F811
    make,
    client,
    keys,  # noqa: F811
    handed,
):
    assert taken_over(received, registered, make, client, keys, [], handed) == ["applied"]
    assert referrals() == []


@pytest.mark.parametrize(
    "handed",
    ["MMR", [{"transfer": "x", "to": "MMR", "reason": "services"}], [{"transfer": REFERRAL}]],
)
def test_malformed_referrals_are_invalid_and_change_nothing(
    received,  # noqa: F811
    registered,  # noqa: F811
    make,
    client,
    keys,  # noqa: F811
    handed,
):
    assert taken_over(received, registered, make, client, keys, [], handed) == ["invalid"]
    assert referrals() == []
    assert db.session.scalar(select(Case).where(Case.uuid == received["case_uuid"])) is None


def test_a_follow_up_to_the_new_owner_before_the_case_is_handed_over_waits(
    received,  # noqa: F811
    registered,  # noqa: F811
    make,
    client,
    keys,  # noqa: F811
):
    """MMR followed KHM on THA's word before KHM had the case: its follow-up is sent again
    until KHM owns the case, then taken (was: ignored, lost)."""
    case_uuid = received["case_uuid"]
    follow_up = message(
        "upsert",
        case_uuid,
        "MMR",
        {"case": {"owner_mission": "KHM", "fields": {"cas_Status": "Closed"}}, "records": []},
        version=3,
    )
    assert deliver(client, keys["MMR"], "MMR", "KHM", follow_up) == ["not_yet"]
    assert taken_over(received, registered, make, client, keys, []) == ["applied"]
    assert deliver(client, keys["MMR"], "MMR", "KHM", follow_up) == ["applied"]
    db.session.expire_all()
    assert db.session.scalar(select(Case).where(Case.uuid == case_uuid)).status == "Closed"


# ---- a copy -----------------------------------------------------------------------------


@pytest.fixture
def as_mmr(app, monkeypatch, tmp_path, keys):  # noqa: F811
    """This app is MMR; THA and KHM are its peers."""
    use_missions(
        monkeypatch, app, tmp_path, "MMR", [mission(c, k) for c, k in keys.items()], keys["MMR"]
    )


CASE = str(uuid.uuid4())


def upsert(origin: str, version: int, owner: str, fields: dict | None = None) -> dict:
    payload = {"case": {"owner_mission": owner, "fields": fields or {}}, "records": []}
    if fields:
        payload["consent"] = {"purposes": []}
    return message("upsert", CASE, origin, payload, version)


def to_mmr(client, keys, change: dict) -> list[str]:  # noqa: F811
    sender = change["origin_mission"]
    return deliver(client, keys[sender], sender, "MMR", change)


def the_copy() -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.uuid == CASE))


@pytest.fixture
def copy_of_thas(as_mmr, app_context, client, keys):  # noqa: F811
    """MMR holds a copy of THA's case."""
    assert to_mmr(client, keys, upsert("THA", 1, "THA", {"prs_Gender": "Feminine"})) == ["applied"]
    copy = the_copy()
    assert (copy.owner_mission, copy.consent.recipient_missions) == ("THA", ["THA"])
    return copy


def test_the_owners_word_hands_the_copy_over_and_a_replay_changes_nothing(
    copy_of_thas,
    client,
    keys,  # noqa: F811
):
    told = upsert("THA", 5, "KHM")
    assert to_mmr(client, keys, told) == ["applied"]
    copy = the_copy()
    assert (copy.owner_mission, copy.version, copy.person.gender) == ("KHM", 2, "Feminine")
    assert copy.versions[-1].changes["owner_mission"] == {"from": "THA", "to": "KHM"}
    assert copy.versions[-1].sync_change_id == told["change_id"]
    assert copy.consent.recipient_missions == ["KHM"], "its follow-ups go to the new owner"

    assert to_mmr(client, keys, told) == ["duplicate"]
    assert to_mmr(client, keys, {**told, "change_id": str(uuid.uuid4())}) == ["stale"]
    assert the_copy().version == 2

    assert to_mmr(client, keys, upsert("KHM", 3, "KHM", {"prs_Gender": "Masculine"})) == [
        "applied"
    ], "the new owner's upserts are taken"
    assert (the_copy().owner_mission, the_copy().person.gender) == ("KHM", "Masculine")
    assert to_mmr(client, keys, upsert("THA", 6, "THA", {"prs_Gender": "Feminine"})) == [
        "not_yet"
    ], "the old owner's word is no longer taken (unless the copy's owner hands it back)"
    assert the_copy().person.gender == "Masculine"


def as_sent(change: dict) -> dict:
    """The change with the id its origin's outbox gives it (sync.outbox.change_id_for)."""
    origin, version = change["origin_mission"], change["version"]
    return {**change, "change_id": change_id_for(origin, CASE, version, "MMR")}


def test_the_new_owners_first_upsert_does_not_hide_the_old_owners_notice(
    copy_of_thas,
    client,
    keys,  # noqa: F811
):
    """The bug a CI run found (the three-node scenario, now and then): KHM, the new owner,
    numbers its versions of the case as THA does; its first upsert to MMR (version 2,
    ignored: THA still owns MMR's copy) and THA's notice (version 2) had one change id,
    so the notice arriving second was acknowledged as a repeat and MMR never followed."""
    first = as_sent(upsert("KHM", 2, "KHM", {"prs_Gender": "Masculine"}))
    notice = as_sent(upsert("THA", 2, "KHM"))
    assert first["change_id"] != notice["change_id"]
    assert to_mmr(client, keys, first) == ["not_yet"], "before the notice: not its owner yet"
    assert to_mmr(client, keys, notice) == ["applied"]
    assert the_copy().owner_mission == "KHM"
    assert to_mmr(client, keys, first) == ["applied"], "KHM's next attempt, once it owns it"
    assert the_copy().person.gender == "Masculine"


def test_a_change_id_another_mission_used_is_refused_not_taken_for_a_repeat(
    copy_of_thas,
    client,
    keys,  # noqa: F811
):
    ignored = upsert("KHM", 2, "THA")
    assert to_mmr(client, keys, ignored) == ["ignored"]
    same_id = {**upsert("THA", 2, "KHM"), "change_id": ignored["change_id"]}
    assert to_mmr(client, keys, same_id) == ["invalid"], "its sender retries, then sees it dead"
    assert the_copy().owner_mission == "THA"


def test_a_non_owners_word_is_ignored_and_its_claim_waits(copy_of_thas, client, keys):  # noqa: F811
    assert to_mmr(client, keys, upsert("KHM", 1, "THA", {"prs_Gender": "Masculine"})) == ["ignored"]
    assert to_mmr(client, keys, upsert("KHM", 2, "KHM", {"prs_Gender": "Masculine"})) == [
        "not_yet"
    ], "KHM says it owns the case: sent again until THA's word says so, or dead there"
    copy = the_copy()
    assert (copy.owner_mission, copy.version, copy.person.gender) == ("THA", 1, "Feminine")
    assert db.session.get(SyncAppliedVersion, (CASE, "KHM")) is None
    kept = db.session.scalars(
        select(SyncInboxChange.kind).where(SyncInboxChange.origin_mission == "KHM")
    ).all()
    assert kept == ["upsert"], "the ignored one only: a claim that waits is not kept"


@pytest.mark.parametrize("named", ["MMR", "LAO"], ids=["this-mission", "unregistered"])
def test_a_copy_never_takes_ownership_for_itself_nor_follows_an_unknown_owner(
    copy_of_thas,
    client,
    keys,  # noqa: F811
    named,
):
    assert to_mmr(client, keys, upsert("THA", 2, named)) == ["applied"]
    copy = the_copy()
    assert (copy.owner_mission, copy.version) == ("THA", 1), "no owner taken, nothing new"
    assert copy.consent.recipient_missions == ["THA"]


def test_a_copys_own_consent_statement_is_kept_on_a_handover(
    copy_of_thas,
    client,
    keys,  # noqa: F811
):
    copy_of_thas.consents.append(
        Consent(uuid=str(uuid.uuid4()), given=True, sharing=False, withdrawn=True, purposes=[])
    )
    db.session.commit()
    assert to_mmr(client, keys, upsert("THA", 2, "KHM")) == ["applied"]
    copy = the_copy()
    assert copy.owner_mission == "KHM" and copy.consent.withdrawn, "MMR's own statement"


def test_a_referred_copy_takes_the_new_owners_revocation(
    copy_of_thas,
    client,
    keys,  # noqa: F811
):
    """MMR's referral follows the copy to KHM: KHM's revocation ends it (was: ignored,
    THA's row said THA referred it)."""
    db.session.add(
        SyncTransfer(
            uuid=REFERRAL,
            kind="referral",
            case_uuid=CASE,
            from_mission="THA",
            to_mission="MMR",
            state="accepted",
            reason="services",
            decided_at=transfers.utcnow(),
        )
    )
    db.session.commit()
    assert to_mmr(client, keys, upsert("THA", 2, "KHM")) == ["applied"]
    [referral] = referrals()
    assert (referral.from_mission, referral.state) == ("KHM", "accepted")
    revoked = message("transfer_revoke", CASE, "KHM", {"transfer": REFERRAL}, 3)
    assert to_mmr(client, keys, revoked) == ["applied"]
    assert referrals()[0].state == "revoked"


def test_a_new_owners_tombstone_before_the_old_owners_word_waits(copy_of_thas, client, keys):  # noqa: F811
    """KHM, the new owner, withdraws MMR's copy (its consent does not cover MMR) before
    THA's word reached MMR: sent again, then applied (was: ignored, the copy kept), and
    what THA sent goes too (was: only what KHM itself had sent)."""
    withdrawn = as_sent(message("tombstone", CASE, "KHM", {}, 2))
    assert to_mmr(client, keys, withdrawn) == ["not_yet"]
    assert the_copy().person.gender == "Feminine"
    assert to_mmr(client, keys, as_sent(upsert("THA", 2, "KHM"))) == ["applied"]
    assert to_mmr(client, keys, withdrawn) == ["applied"]
    copy = the_copy()
    assert (copy.person.gender, copy.consent.withdrawn) == (None, True), "THA's values too"
    erased = [v.changes for v in copy.versions if v.changes.get("erased")]
    assert erased == [{"origin_mission": "THA", "erased": True}] * 2, "who sent them, kept"
