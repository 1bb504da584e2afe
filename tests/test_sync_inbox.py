"""POST /sync/v1/inbox at KHM: signed batches from THA are applied once; others change nothing."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import func, select

from server.extensions import db
from sync.keys import load_mission_key
from sync.models import SyncInboxChange, SyncSeenNonce
from sync.signing import new_batch, sign_batch, verify_receipt
from tests.sync_support import as_khm_knowing_tha, new_key

INBOX = "/sync/v1/inbox"


@pytest.fixture
def tha_key(app, monkeypatch, tmp_path):
    """This app is KHM; THA is its registered peer. Returns THA's signing key."""
    key = new_key()
    as_khm_knowing_tha(monkeypatch, app, tmp_path, key)
    return key


def change(version: int = 1, **overrides) -> dict:
    return {
        "change_id": str(uuid.uuid4()),
        "case_uuid": str(uuid.uuid4()),
        "origin_mission": "THA",
        "version": version,
        "kind": "upsert",
        "payload": {"case": {"owner_mission": "THA", "fields": {"prs_Gender": "Feminine"}}},
        **overrides,
    }


def signed(key, changes, *, sender="THA", recipient="KHM", now=None) -> dict:
    return sign_batch(new_batch(sender, recipient, changes, now=now), key)


def send(client, envelope):
    body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
    return client.post(INBOX, data=body, content_type="application/json")


def stored() -> tuple[int, int]:
    """(inbox changes, seen nonces): both stay put when a batch is refused."""
    return (
        db.session.scalar(select(func.count()).select_from(SyncInboxChange)),
        db.session.scalar(select(func.count()).select_from(SyncSeenNonce)),
    )


def test_a_signed_batch_is_applied_and_acknowledged_per_change(client, tha_key, app_context):
    changes = [change(), change(version=3)]
    envelope = signed(tha_key, changes)
    response = send(client, envelope)
    assert response.status_code == 200, response.json
    khm_public_key = load_mission_key().public_key()
    assert verify_receipt(response.json, "KHM", envelope["batch"]["nonce"], khm_public_key) == [
        {"change_id": c["change_id"], "status": "applied"} for c in changes
    ], "KHM's receipt"
    rows = db.session.scalars(select(SyncInboxChange).order_by(SyncInboxChange.id)).all()
    assert [(r.change_id, r.sender_mission, r.version, r.payload) for r in rows] == [
        (c["change_id"], "THA", c["version"], c["payload"]) for c in changes
    ]
    assert stored() == (2, 1)


def test_a_mission_without_its_key_takes_no_batch(client, tha_key, app, monkeypatch, tmp_path):
    """Its receipt could not be signed: nothing is applied, the sender tries later."""
    monkeypatch.setitem(app.config, "MISSION_KEY_FILE", str(tmp_path / "missing.pem"))
    response = send(client, signed(tha_key, [change()]))
    assert (response.status_code, response.json["error"]) == (503, "no_key")
    with app.app_context():
        assert stored() == (0, 0)


def test_redelivered_changes_are_acknowledged_and_not_applied_twice(client, tha_key, app_context):
    first, second = change(), change()
    assert send(client, signed(tha_key, [first])).status_code == 200
    again = send(client, signed(tha_key, [first, second, second]))  # a new batch, new nonce
    assert again.status_code == 200
    assert [a["status"] for a in again.json["acks"]] == ["duplicate", "applied", "duplicate"]
    assert stored() == (2, 2)


def refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json["error"] == code and response.json["message"]


def test_a_tampered_batch_is_refused_and_nothing_applied(client, tha_key, app_context):
    envelope = signed(tha_key, [change()])
    tampered = copy.deepcopy(envelope)
    tampered["batch"]["changes"][0]["payload"]["case"]["fields"]["prs_Gender"] = "Masculine"
    refused(send(client, tampered), 401, "bad_signature")
    retargeted = copy.deepcopy(envelope)
    retargeted["batch"]["changes"][0]["case_uuid"] = str(uuid.uuid4())
    refused(send(client, retargeted), 401, "bad_signature")
    assert stored() == (0, 0)


def test_a_replayed_batch_is_refused_and_nothing_applied_again(client, tha_key, app_context):
    envelope = signed(tha_key, [change()])
    assert send(client, envelope).status_code == 200
    refused(send(client, envelope), 409, "replayed")
    assert stored() == (1, 1)


def test_an_unsigned_batch_is_refused(client, tha_key, app_context):
    envelope = signed(tha_key, [change()])
    refused(send(client, {"batch": envelope["batch"]}), 401, "unsigned")
    refused(send(client, {**envelope, "signature": ""}), 401, "unsigned")
    assert stored() == (0, 0)


def test_an_unknown_or_impersonated_sender_is_refused(client, tha_key, app_context):
    stranger = new_key()
    refused(
        send(client, signed(stranger, [change(origin_mission="MMR")], sender="MMR")),
        403,
        "unknown_sender",
    )
    refused(send(client, signed(stranger, [change()])), 401, "bad_signature")  # says THA
    own = signed(stranger, [change(origin_mission="KHM")], sender="KHM")
    refused(send(client, own), 403, "unknown_sender")  # never from itself
    assert stored() == (0, 0)


@pytest.mark.parametrize("minutes", [-10, 10])
def test_a_stale_or_future_batch_is_refused(client, tha_key, app_context, minutes):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    refused(send(client, signed(tha_key, [change()], now=when)), 400, "stale")
    assert stored() == (0, 0)


def test_the_clock_skew_allowed_is_configurable(app, client, tha_key, app_context, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_MAX_CLOCK_SKEW_SECONDS", 3600)
    when = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    assert send(client, signed(tha_key, [change()], now=when)).status_code == 200


def test_a_batch_for_another_mission_or_with_others_changes_is_refused(
    client, tha_key, app_context
):
    refused(send(client, signed(tha_key, [change()], recipient="MMR")), 403, "wrong_recipient")
    relayed = signed(tha_key, [change(), change(origin_mission="MMR")])
    refused(send(client, relayed), 403, "foreign_origin")
    assert stored() == (0, 0)


@pytest.mark.parametrize(
    "broken",
    [
        {"version": 0},
        {"version": "2"},
        {"kind": "delete"},
        {"change_id": "not-a-uuid"},
        {"payload": ["not", "an", "object"]},
        {"extra": 1},
    ],
)
def test_a_signed_but_malformed_change_refuses_the_whole_batch(
    client, tha_key, app_context, broken
):
    refused(send(client, signed(tha_key, [change(), change(**broken)])), 400, "malformed")
    assert stored() == (0, 0)


def test_bodies_that_are_not_batches_are_refused(client, tha_key, app_context):
    refused(send(client, b"{not json"), 400, "malformed")
    refused(send(client, b'{"batch": {"x": NaN}, "signature": "x"}'), 400, "malformed")
    refused(send(client, [1, 2]), 400, "malformed")
    empty = signed(tha_key, [])
    refused(send(client, empty), 400, "malformed")
    assert client.get(INBOX).status_code == 405
    assert stored() == (0, 0)


def test_a_batch_larger_than_allowed_is_refused(app, client, tha_key, app_context, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_MAX_BATCH_CHANGES", 2)
    refused(send(client, signed(tha_key, [change(), change(), change()])), 400, "malformed")
    monkeypatch.setitem(app.config, "SYNC_MAX_BATCH_BYTES", 100)
    refused(send(client, signed(tha_key, [change()])), 413, "too_large")
    assert stored() == (0, 0)
