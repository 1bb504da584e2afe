"""Transfers and referrals through the pages: at the owner (THA) the case page asks and
revokes; at the recipient (KHM) the review queue lists the request, with candidates and
never names, and accepts or declines it. Admins only, CSRF checked, audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.extensions import db
from sync.models import SyncReview, SyncTransfer
from tests.admin_support import log_in
from tests.factories import csrf_protected_client
from tests.test_sync_apply_linkage import (  # noqa: F401 - fixtures used by name
    registered,
    secret,
)
from tests.test_sync_transfers import (  # noqa: F401 - fixtures used by name
    NAMES,
    as_khm,
    as_tha,
    deliver,
    keys,
    message,
    new_case,
    received,
    sent,
)

REGISTERED_NAMES = ("Sreypov", "Chhorn")


def item() -> SyncReview:
    db.session.expire_all()
    return db.session.scalar(select(SyncReview))


def transfer_row() -> SyncTransfer:
    db.session.expire_all()
    return db.session.scalar(select(SyncTransfer))


# ---- the recipient: the review queue -----------------------------------------------------


def test_the_queue_lists_the_request_with_candidates_and_no_names(
    received,  # noqa: F811
    registered,  # noqa: F811
    admin_client,
):
    text = admin_client.get("/admin/sync/review?kind=transfer").text
    review_id = item().id
    assert f'id="review-{review_id}"' in text and 'data-kind="transfer"' in text
    assert "From mission" in text and "<dd>THA</dd>" in text
    assert "Services closer to where the person is" in text
    assert "not here yet: only the person's encoding came" in text
    assert f'name="person_id" value="{registered.id}"' in text and "None of these" in text
    assert f'href="/cases/{registered.cases[0].uuid}"' in text, "the candidate's case"
    assert "Accept the transfer from THA?" in text and "Decline the transfer from THA?" in text
    assert not any(name in text for name in REGISTERED_NAMES + NAMES)


def test_accepting_through_the_page_answers_the_owner_and_is_audited(
    received,  # noqa: F811
    registered,  # noqa: F811
    admin_client,
):
    review_id = item().id
    response = admin_client.post(
        f"/admin/sync/review/{review_id}/accept",
        data={"person_id": str(registered.id)},
        follow_redirects=True,
    )
    assert f"Item {review_id} accepted: THA hands the case over" in response.text
    assert item().state == "accepted" and item().chosen_person_id == registered.id
    assert (transfer_row().state, transfer_row().person_id) == ("accepted", registered.id)
    assert [r.kind for r in sent()] == ["transfer_accept"]
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    decided = [(e.action, e.user_id, e.address) for e in events if e.action != "login"]
    assert decided == [
        ("transfer.accept", admin_client.user_id, "127.0.0.1"),
        ("review.accept", admin_client.user_id, "127.0.0.1"),
    ]


def test_accepting_without_a_candidate_is_a_new_person(received, admin_client):  # noqa: F811
    review_id = item().id
    admin_client.post(f"/admin/sync/review/{review_id}/accept", data={"person_id": ""})
    assert transfer_row().state == "accepted" and transfer_row().person_id is None


def test_declining_through_the_page(received, admin_client):  # noqa: F811
    review_id = item().id
    response = admin_client.post(f"/admin/sync/review/{review_id}/reject", follow_redirects=True)
    assert f"Item {review_id} declined: the case stays with THA." in response.text
    assert transfer_row().state == "rejected"
    assert [r.kind for r in sent()] == ["transfer_reject"]


def test_a_decision_needs_the_csrf_token(app, make, received):  # noqa: F811
    admin = make.user("admin")
    review_id = item().id
    with csrf_protected_client(app, admin.name) as client:
        assert client.post(f"/admin/sync/review/{review_id}/accept").status_code == 400
        assert transfer_row().state == "pending" and sent() == []


@pytest.mark.parametrize("role", ["designer", "viewer", "collector"])
def test_only_admins_decide(app, make, received, role):  # noqa: F811
    user = make.user(role)
    client = app.test_client()
    log_in(client, user.name)
    review_id = item().id
    for action in ("accept", "reject"):
        assert client.post(f"/admin/sync/review/{review_id}/{action}").status_code == 403
    assert client.get("/admin/sync/review").status_code == 403
    assert transfer_row().state == "pending"


# ---- the owner: the case page -------------------------------------------------------------


@pytest.mark.usefixtures("as_tha")
def test_the_case_page_offers_an_admin_the_form_and_sends_the_request(make, admin_client):
    case = new_case(make)
    page = admin_client.get(f"/cases/{case.uuid}").text
    assert 'id="transfer-form"' in page
    assert '<option value="KHM">KHM</option>' in page and '<option value="THA">' not in page
    assert '<option value="services">' in page

    response = admin_client.post(
        f"/cases/{case.uuid}/transfers",
        data={"kind": "transfer", "to_mission": "KHM", "reason": "services"},
        follow_redirects=True,
    )
    assert "Transfer asked of KHM: only the person&#39;s encoding was sent." in response.text
    row = transfer_row()
    assert (row.kind, row.to_mission, row.state, row.requested_by) == (
        "transfer",
        "KHM",
        "pending",
        admin_client.user_id,
    )
    assert f'id="transfer-{row.uuid}"' in response.text and "Revoke" in response.text
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "transfer.request")
    ).all()
    assert event.address == "127.0.0.1"

    revoked = admin_client.post(
        f"/cases/{case.uuid}/transfers/{row.uuid}/revoke", follow_redirects=True
    )
    assert "Transfer to KHM revoked." in revoked.text and transfer_row().state == "revoked"
    assert [r.kind for r in sent()] == ["transfer_request", "transfer_revoke"]
    again = admin_client.post(
        f"/cases/{case.uuid}/transfers/{row.uuid}/revoke", follow_redirects=True
    )
    assert "The transfer was revoked already. Nothing was changed." in again.text


@pytest.mark.usefixtures("as_tha")
def test_a_refused_request_is_flashed_and_nothing_is_sent(make, admin_client):
    case = new_case(make, withdrawn=True)
    response = admin_client.post(
        f"/cases/{case.uuid}/transfers",
        data={"kind": "referral", "to_mission": "MMR", "reason": "legal"},
        follow_redirects=True,
    )
    assert "consent does not allow sharing with MMR" in response.text
    assert "flash-error" in response.text
    assert transfer_row() is None and sent() == []


@pytest.mark.usefixtures("as_tha")
def test_a_copy_of_another_missions_case_offers_no_form(make, admin_client):
    case = new_case(make, owner="THA")
    case.owner_mission = "KHM"  # as after a transfer: THA keeps a copy
    db.session.commit()
    response = admin_client.get(f"/cases/{case.uuid}")
    assert 'id="transfer-form"' not in response.text


@pytest.mark.usefixtures("as_tha")
def test_the_case_page_requests_need_the_csrf_token_and_an_admin(app, make):
    case = new_case(make)
    admin, viewer = make.user("admin"), make.user("viewer")
    data = {"kind": "transfer", "to_mission": "KHM", "reason": "services"}
    with csrf_protected_client(app, admin.name) as client:
        assert client.post(f"/cases/{case.uuid}/transfers", data=data).status_code == 400
    client = app.test_client()
    log_in(client, viewer.name)
    assert 'id="transfer-form"' not in client.get(f"/cases/{case.uuid}").text
    assert client.post(f"/cases/{case.uuid}/transfers", data=data).status_code == 403
    assert transfer_row() is None and sent() == []


@pytest.mark.usefixtures("as_tha")
def test_an_accepted_referral_shows_in_the_timeline_and_can_be_ended(
    make,
    admin_client,
    client,
    keys,  # noqa: F811
):
    case = new_case(make)
    admin_client.post(
        f"/cases/{case.uuid}/transfers",
        data={"kind": "referral", "to_mission": "MMR", "reason": "legal"},
    )
    row = transfer_row()
    accepted = message("transfer_accept", case.uuid, "MMR", {"transfer": row.uuid})
    assert deliver(client, keys["MMR"], "MMR", "THA", accepted) == ["applied"]
    page = admin_client.get(f"/cases/{case.uuid}").text
    assert "Referral to MMR</p>" in page and 'data-state="accepted"' in page
    assert "Its copy of the case is withdrawn." in page, "the revoke button's confirm"
    admin_client.post(f"/cases/{case.uuid}/transfers/{row.uuid}/revoke")
    page = admin_client.get(f"/cases/{case.uuid}").text
    assert "Referral to MMR ended" in page and 'data-state="revoked"' in page
    assert [r.kind for r in sent()][-1] == "tombstone"
