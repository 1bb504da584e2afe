"""The sync page: per peer what waits, what died and what came in, read from real outbox
and inbox rows; retry of dead-lettered changes; who may see it or act."""

from __future__ import annotations

import datetime as dt
import socket
import uuid

import pytest
from sqlalchemy import select

from server.admin.queue_status import database_now
from server.audit.models import AuditEvent
from server.extensions import db
from sync.delivery import deliver_pending, retry_dead
from sync.models import SyncInboxChange, SyncOutbox
from sync.status import dead_changes, is_peer, outbox_counts, sync_status
from tests.admin_support import OUTSIDERS, assert_admins_only
from tests.factories import csrf_protected_client, csrf_token
from tests.sync_support import mission, new_key, use_missions

THA_KEY = new_key()
#: A value from a case: it travels in payloads and must never reach the page.
SECRET = "Sokha Chan"


@pytest.fixture
def missions(app, tmp_path, monkeypatch):
    """This node is THA; KHM is a peer nobody listens for (its port is closed), MMR another."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    return use_missions(
        monkeypatch,
        app,
        tmp_path,
        "THA",
        [
            mission("THA", THA_KEY),
            mission("KHM", new_key(), fields=("prs_Gender",), url=f"http://127.0.0.1:{closed}"),
            mission("MMR", new_key()),
        ],
        own_key=THA_KEY,
    )


def outgoing(recipient: str, state: str = "pending", **values) -> SyncOutbox:
    row = SyncOutbox(
        change_id=str(uuid.uuid4()),
        case_uuid=str(uuid.uuid4()),
        recipient_mission=recipient,
        origin_mission="THA",
        version=1,
        kind="upsert",
        payload={"case": {"fields": {"prs_FirstName": SECRET}}},
        state=state,
        attempts=values.pop("attempts", 0),
        **values,
    )
    db.session.add(row)
    db.session.commit()
    return row


def incoming(sender: str, **values) -> SyncInboxChange:
    row = SyncInboxChange(
        change_id=str(uuid.uuid4()),
        sender_mission=sender,
        origin_mission=sender,
        case_uuid=str(uuid.uuid4()),
        version=1,
        kind="upsert",
        payload={"case": {"fields": {"prs_FirstName": SECRET}}},
        **values,
    )
    db.session.add(row)
    db.session.commit()
    return row


def states(recipient: str) -> list[str]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(SyncOutbox.state)
            .where(SyncOutbox.recipient_mission == recipient)
            .order_by(SyncOutbox.id)
        )
    )


# ---- the status, from real rows ---------------------------------------------------------


def test_each_peer_shows_delivery_lag_pending_dead_error_and_what_came_in(app_context, missions):
    now = database_now()
    outgoing("KHM", "acked", acked_at=dt.datetime(2026, 1, 2, 3, 4, 5))
    outgoing("KHM", "pending", created_at=now - dt.timedelta(minutes=10))
    outgoing("KHM", "sent", last_error="sent but not acknowledged")
    outgoing("KHM", "dead", attempts=10, last_error="HTTP 400 malformed")
    outgoing("GONE", "dead", last_error="unreachable: [Errno 111] Connection refused")
    incoming("MMR", received_at=now - dt.timedelta(minutes=3))
    incoming("MMR")

    status = sync_status()

    assert status.mission == "THA" and status.registry_ok
    peers = {p.code: p for p in status.peers}
    assert list(peers) == ["GONE", "KHM", "MMR"]  # THA itself is no peer
    khm = peers["KHM"]
    assert (khm.name, khm.registered) == ("Mission KHM", True)
    assert (khm.pending, khm.dead, khm.acked) == (2, 1, 1)
    assert 600 <= khm.lag_seconds < 660
    assert khm.last_delivered_at == "2026-01-02 03:04:05" and khm.last_delivered_seconds > 0
    assert khm.last_error == "HTTP 400 malformed"  # the newest unacknowledged change's
    assert khm.received == 0 and khm.last_received_at is None
    mmr = peers["MMR"]
    assert (mmr.pending, mmr.dead, mmr.lag_seconds, mmr.last_delivered_at) == (0, 0, None, None)
    assert mmr.received == 2 and mmr.last_received_seconds < 30  # the newer of the two
    assert peers["GONE"].registered is False and peers["GONE"].dead == 1
    assert (status.pending_total, status.dead_total) == (2, 2)
    assert outbox_counts()["KHM"] == {"pending": 1, "sent": 1, "acked": 1, "dead": 1}
    assert [d.mission for d in dead_changes()] == ["KHM", "GONE"]
    assert [d.error for d in dead_changes("GONE")] == [peers["GONE"].last_error]


def test_a_real_failed_delivery_is_dead_lettered_with_a_reason_and_no_values(
    app, app_context, missions, monkeypatch
):
    monkeypatch.setitem(app.config, "SYNC_MAX_ATTEMPTS", 1)
    outgoing("KHM")
    assert deliver_pending("KHM").dead == 1

    [khm] = [p for p in sync_status().peers if p.code == "KHM"]
    assert khm.dead == 1 and khm.pending == 0
    assert khm.last_error.startswith("unreachable")
    assert SECRET not in repr(sync_status().as_dict())


def test_an_unreadable_registry_still_lists_peers_from_the_tables(
    app, app_context, missions, tmp_path
):
    outgoing("KHM", "dead")
    (tmp_path / "missions-THA.json").write_text("{not json")
    status = sync_status()
    assert status.registry_ok is False
    assert [(p.code, p.registered, p.dead) for p in status.peers] == [("KHM", False, 1)]


def test_retry_makes_one_peers_dead_changes_pending_and_is_audited(app_context, missions, make):
    admin = make.user("admin")
    outgoing("KHM", "dead", attempts=10, next_attempt_at=None)
    outgoing("MMR", "dead")

    assert retry_dead("KHM", by_user_id=admin.id, address="10.0.0.1", via="page") == 1
    db.session.commit()

    assert states("KHM") == ["pending"] and states("MMR") == ["dead"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.retry"))
    assert (event.user_id, event.object_type, event.object_id) == (admin.id, "mission", "KHM")
    assert event.details == {"changes": 1, "via": "page"} and event.address == "10.0.0.1"


def test_peers_are_registered_missions_or_ones_the_outbox_names(app_context, missions):
    outgoing("GONE", "acked")
    assert is_peer("KHM") and is_peer("GONE")
    assert not is_peer("THA") and not is_peer("LAO")


# ---- the page, its JSON and its action ----------------------------------------------------


def test_the_page_shows_each_peer_and_offers_retry_for_dead_changes(
    app_context, missions, admin_client
):
    outgoing("KHM", "dead", last_error="HTTP 400 malformed")
    incoming("MMR")
    page = admin_client.get("/admin/sync")
    assert page.status_code == 200
    text = page.text
    assert "Sync with linked missions" in text and "Mission KHM" in text
    assert "HTTP 400 malformed" in text and SECRET not in text
    assert "/admin/sync/peers/KHM/retry" in text and "/admin/sync/peers/MMR/retry" not in text
    assert '<a href="/admin/sync" aria-current="page">Sync</a>' in text
    assert 'src="/static/sync.js"' in text


def test_the_json_carries_the_status_and_retry_urls_and_is_not_cached(
    app_context, missions, admin_client
):
    outgoing("KHM", "dead")
    response = admin_client.get("/admin/sync.json")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    data = response.json
    assert set(data) >= {"as_of", "mission", "registry_ok", "peers", "dead_total", "pending_total"}
    khm = next(p for p in data["peers"] if p["code"] == "KHM")
    assert khm["dead"] == 1 and khm["retry_url"] == "/admin/sync/peers/KHM/retry"
    assert SECRET not in response.text


def test_retry_from_the_page_sends_them_again_and_says_so(app_context, missions, admin_client):
    outgoing("KHM", "dead")
    response = admin_client.post("/admin/sync/peers/KHM/retry", follow_redirects=True)
    assert "1 change(s) to KHM will be sent again." in response.text
    assert states("KHM") == ["pending"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "sync.retry"))
    assert event.user_id == admin_client.user_id and event.details["via"] == "page"

    again = admin_client.post("/admin/sync/peers/KHM/retry", follow_redirects=True)
    assert "No dead-lettered changes to KHM." in again.text


def test_retry_for_a_mission_that_is_no_peer_is_404(app_context, missions, admin_client):
    assert admin_client.post("/admin/sync/peers/LAO/retry").status_code == 404
    assert admin_client.post("/admin/sync/peers/THA/retry").status_code == 404


URLS = [
    ("get", "/admin/sync"),
    ("get", "/admin/sync.json"),
    ("post", "/admin/sync/peers/KHM/retry"),
]


@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_only_admins_may_see_or_retry(app, make, outsider, missions):
    assert_admins_only(app, make, outsider, URLS, nav_link="/admin/sync")


def test_retry_needs_the_csrf_token(make, app, missions, app_context):
    outgoing("KHM", "dead")
    admin = make.user("admin")
    with csrf_protected_client(
        app, admin.name, MISSION_CODE="THA", MISSIONS_FILE=app.config["MISSIONS_FILE"]
    ) as client:
        assert client.post("/admin/sync/peers/KHM/retry").status_code == 400
        assert states("KHM") == ["dead"]
        token = csrf_token(client.get("/admin/sync").text)
        response = client.post("/admin/sync/peers/KHM/retry", data={"csrf_token": token})
        assert response.status_code == 302 and states("KHM") == ["pending"]
