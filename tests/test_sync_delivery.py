"""Delivery from THA (the test app) to KHM (a second app, its own SQLite database, served on
a loopback port): signed batches, acks per change, backoff, dead letters, catching up."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from flask_migrate import upgrade
from redis import Redis
from sqlalchemy import select
from werkzeug.serving import make_server

from server import create_app
from server.extensions import db, queue
from sync.delivery import deliver_pending, enqueue_delivery, enqueue_due_deliveries, retry_dead
from sync.models import SyncInboxChange, SyncOutbox
from sync.registry import Registry, save_registry
from sync.scheduler import tick
from sync.signing import BadReceipt, sign_receipt, verify_receipt
from tests.cases_support import SCREENING_MD, drain, post_screening
from tests.factories import app_user_with_forms
from tests.sync_support import mission, new_key, use_missions, write_key

THA_KEY, KHM_KEY = new_key(), new_key()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Peer:
    """KHM: a second CaseBridge app, served in a thread on 127.0.0.1:`port`."""

    def __init__(self, folder, redis_url, port: int, tha_key=THA_KEY, khm_key=KHM_KEY):
        registry = Registry({"THA": mission("THA", tha_key), "KHM": mission("KHM", KHM_KEY)})
        save_registry(registry, folder / "khm-missions.json")
        self.app = create_app(
            "testing",
            {
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'khm.sqlite3'}",
                "REDIS_URL": redis_url,
                "MISSION_CODE": "KHM",
                "MISSIONS_FILE": str(folder / "khm-missions.json"),
                "MISSION_KEY_FILE": str(write_key(folder / "khm.pem", khm_key)),
            },
        )
        with self.app.app_context():
            upgrade()
        self.port = port
        self.server = None

    def start(self) -> None:
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.thread.join(timeout=10)
            self.server.server_close()
            self.server = None

    def received(self) -> list[SyncInboxChange]:
        with self.app.app_context():
            rows = db.session.scalars(select(SyncInboxChange).order_by(SyncInboxChange.id)).all()
            db.session.expunge_all()
            return rows

    def close(self) -> None:
        self.stop()
        with self.app.app_context():
            db.engine.dispose()


@contextlib.contextmanager
def in_khms_place(khm: Peer, folder, redis_url, **keys) -> Iterator[Peer]:
    """KHM stopped, and another app served at its address with other keys (`tha_key`: the
    key it believes THA's; `khm_key`: the key it signs with)."""
    khm.stop()
    (folder / "other").mkdir()
    other = Peer(folder / "other", redis_url, khm.port, **keys)
    other.start()
    try:
        yield other
    finally:
        other.close()


@pytest.fixture
def khm(app, redis_url, tmp_path, monkeypatch):
    """THA's registry knows KHM at a loopback port where KHM is served (started)."""
    port = free_port()
    peer = Peer(tmp_path, redis_url, port)
    use_missions(
        monkeypatch,
        app,
        tmp_path,
        "THA",
        [
            mission("THA", THA_KEY),
            mission(
                "KHM", KHM_KEY, fields=("prs_Gender", "hte_Country"), url=f"http://127.0.0.1:{port}"
            ),
        ],
        own_key=THA_KEY,
    )
    peer.start()
    yield peer
    peer.close()


def queued(count: int, recipient: str = "KHM") -> list[str]:
    """`count` pending outbox rows for `recipient`; their change ids."""
    rows = [
        SyncOutbox(
            change_id=str(uuid.uuid4()),
            case_uuid=str(uuid.uuid4()),
            recipient_mission=recipient,
            origin_mission="THA",
            version=1,
            kind="upsert",
            payload={"case": {"owner_mission": "THA", "fields": {"prs_Gender": "Feminine"}}},
            state="pending",
            attempts=0,
        )
        for _ in range(count)
    ]
    db.session.add_all(rows)
    db.session.commit()
    return [row.change_id for row in rows]


def states() -> list[tuple[str, int]]:
    db.session.expire_all()
    return [
        (r.state, r.attempts)
        for r in db.session.scalars(select(SyncOutbox).order_by(SyncOutbox.id))
    ]


def test_a_screened_case_reaches_khm_with_the_allowed_fields_only(
    app, make, client, runner, khm, app_context
):
    project = make.project()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    case_uuid = post_screening(client, project.id, token)
    drain(runner)  # normalizes; its commit queued a delivery at once, which the worker ran
    db.session.remove()
    assert states() == [("acked", 0)], "delivered without waiting for the sync process"
    assert deliver_pending("KHM").acked == 0
    [received] = khm.received()
    assert (received.case_uuid, received.sender_mission, received.version) == (case_uuid, "THA", 1)
    assert received.payload["case"]["fields"] == {"prs_Gender": "Feminine"}
    assert [r["fields"] for r in received.payload["records"]] == [
        {"hte_Country": "KHM"},
        {"hte_Country": "THA"},
    ]
    assert "Sokha" not in repr(received.payload)
    [kept] = db.session.scalars(select(SyncOutbox)).all()
    assert kept.payload == {
        "sent": {
            "fields": ["prs_Gender"],
            "records": [
                {"dataset": "movement_events", "fields": ["hte_Country"]},
                {"dataset": "movement_events", "fields": ["hte_Country"]},
            ],
            "parts": ["clock", "consent"],
        }
    }, "acknowledged: what went, without the values"


def test_batches_are_limited_and_a_redelivery_is_applied_once(app, khm, app_context, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_BATCH_SIZE", 2)
    ids = queued(5)
    assert deliver_pending("KHM").acked == 5
    assert [r.change_id for r in khm.received()] == ids

    db.session.execute(
        SyncOutbox.__table__.update().values(state="pending")
    )  # as if acks were lost
    db.session.commit()
    assert deliver_pending("KHM").acked == 5
    assert len(khm.received()) == 5
    assert states() == [("acked", 0)] * 5


def test_a_peer_that_is_down_is_retried_with_backoff_then_catches_up(
    app, khm, app_context, monkeypatch
):
    khm.stop()
    queued(2)
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    report = deliver_pending("KHM")
    assert (report.acked, report.failed) == (0, 2)
    rows = db.session.scalars(select(SyncOutbox)).all()
    assert all(r.state == "pending" and r.attempts == 1 for r in rows)
    assert all("unreachable" in r.last_error for r in rows)
    wait = rows[0].next_attempt_at - before
    assert dt.timedelta(seconds=29) < wait <= dt.timedelta(seconds=31)  # the base delay

    khm.start()
    assert deliver_pending("KHM").acked == 0  # not due yet: nothing sent
    assert khm.received() == []
    db.session.execute(SyncOutbox.__table__.update().values(next_attempt_at=before))
    db.session.commit()
    assert deliver_pending("KHM").acked == 2
    assert len(khm.received()) == 2
    assert all(r.last_error is None for r in db.session.scalars(select(SyncOutbox)))


def test_after_the_last_attempt_a_change_is_dead_until_an_admin_retries(
    app, khm, app_context, monkeypatch
):
    monkeypatch.setitem(app.config, "SYNC_RETRY_BASE_SECONDS", 0)
    monkeypatch.setitem(app.config, "SYNC_MAX_ATTEMPTS", 3)
    khm.stop()
    queued(1)
    for _ in range(3):
        deliver_pending("KHM")
    assert states() == [("dead", 3)]
    assert deliver_pending("KHM").acked == 0

    khm.start()
    assert retry_dead("KHM") == 1
    db.session.commit()
    assert deliver_pending("KHM").acked == 1
    assert states() == [("acked", 0)]


def test_nothing_is_sent_over_plain_http_to_another_host(
    app, khm, tmp_path, monkeypatch, app_context
):
    """A registry edited by hand (`missions add` refuses such a URL): the changes wait,
    with the reason, and nothing leaves."""
    use_missions(
        monkeypatch,
        app,
        tmp_path,
        "THA",
        [
            mission("THA", THA_KEY),
            replace(mission("KHM", KHM_KEY), base_url="http://khm.example.org"),
        ],
        own_key=THA_KEY,
    )
    queued(1)
    assert deliver_pending("KHM").failed == 1
    [row] = db.session.scalars(select(SyncOutbox)).all()
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error == "not sent: the peer's base URL is plain http to another host"
    assert khm.received() == []


def test_acks_count_only_in_the_peers_signed_receipt_for_this_batch(
    app, redis_url, tmp_path, khm, app_context
):
    """KHM answers with another key (as someone between the missions would): its acks do
    not count, the change is sent again; KHM's own receipt then acknowledges it."""
    with in_khms_place(khm, tmp_path, redis_url, khm_key=new_key()):
        queued(1)
        assert deliver_pending("KHM").failed == 1
        [row] = db.session.scalars(select(SyncOutbox)).all()
        assert (row.state, row.last_error) == ("pending", "the receipt is not signed by KHM")
    khm.start()
    db.session.execute(SyncOutbox.__table__.update().values(next_attempt_at=None))
    db.session.commit()
    assert deliver_pending("KHM").acked == 1


def test_a_receipt_is_bound_to_its_batch_and_its_mission():
    key = new_key()
    acks = [{"change_id": "c1", "status": "applied"}]
    answer = sign_receipt("KHM", "nonce-1", acks, key)
    assert verify_receipt(answer, "KHM", "nonce-1", key.public_key()) == acks
    for tampered, mission_code, nonce in (
        (answer, "KHM", "nonce-2"),  # an old receipt answering a new batch
        (answer, "MMR", "nonce-1"),
        ({**answer, "acks": [{"change_id": "c2", "status": "applied"}]}, "KHM", "nonce-1"),
        ({name: v for name, v in answer.items() if name != "signature"}, "KHM", "nonce-1"),
    ):
        with pytest.raises(BadReceipt):
            verify_receipt(tampered, mission_code, nonce, key.public_key())


def test_a_refused_batch_records_the_peers_reason(app, redis_url, tmp_path, khm, app_context):
    """KHM's registry holds another key for THA: it refuses the batch, THA notes why."""
    with in_khms_place(khm, tmp_path, redis_url, tha_key=new_key()) as impostor_view:
        queued(1)
        assert deliver_pending("KHM").failed == 1
        [row] = db.session.scalars(select(SyncOutbox)).all()
        assert (row.state, row.last_error) == ("pending", "HTTP 401 bad_signature")
        assert impostor_view.received() == []


def test_an_unknown_peer_gets_nothing(app, khm, app_context):
    queued(1, recipient="MMR")
    assert deliver_pending("MMR").acked == 0
    assert states() == [("pending", 0)]


def test_the_worker_delivers_what_is_due(app, runner, khm, app_context):
    ids = queued(2)
    assert enqueue_due_deliveries() == ["KHM"]
    drain(runner)
    assert [r.change_id for r in khm.received()] == ids
    assert states() == [("acked", 0)] * 2
    assert enqueue_due_deliveries() == []


def test_the_sync_commands_show_deliver_and_retry(app, runner, khm, app_context, monkeypatch):
    monkeypatch.setitem(app.config, "SYNC_MAX_ATTEMPTS", 1)
    khm.stop()
    [change_id] = queued(1)
    result = runner.invoke(args=["sync", "deliver", "KHM"])
    assert result.exit_code == 0 and "0 acked, 0 failed, 1 dead" in result.output
    status = runner.invoke(args=["sync", "status"]).output.splitlines()
    assert status[0] == "KHM\tdead\t1"
    assert status[1].startswith(f"dead\tKHM\t{change_id}\tunreachable")

    khm.start()
    assert "1 change(s) will be sent again" in runner.invoke(args=["sync", "retry"]).output
    result = runner.invoke(args=["sync", "deliver", "KHM"])
    assert "1 acked" in result.output
    assert runner.invoke(args=["sync", "status"]).output == "KHM\tacked\t1\n"


def test_one_delivery_job_per_peer_at_a_time(app, runner, khm, app_context):
    queued(1)
    assert enqueue_due_deliveries() == ["KHM"]
    assert enqueue_delivery("KHM") is False  # one is waiting: it will send what is due
    assert queue("default").count == 1
    drain(runner)
    assert states() == [("acked", 0)]
    queued(1)
    assert enqueue_delivery("KHM") is True  # a finished job does not block the next one
    drain(runner)
    assert states() == [("acked", 0)] * 2


def test_the_sync_process_tick_survives_redis_being_away(app, khm, app_context, monkeypatch):
    queued(1)
    unreachable = Redis.from_url("redis://127.0.0.1:9", socket_connect_timeout=0.2)
    with monkeypatch.context() as patched:
        patched.setitem(app.extensions, "casebridge_redis", unreachable)
        assert tick() == []
    assert tick() == ["KHM"]


def test_waking_a_delivery_with_redis_away_leaves_it_to_the_poll(app_context, monkeypatch, caplog):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from sync import delivery

    def unreachable(mission_code):
        raise RedisConnectionError("down")

    monkeypatch.setattr(delivery, "enqueue_delivery", unreachable)
    delivery.wake_deliveries({"KHM", "MMR"})  # no exception: the normalization stands
    assert "the poll will" in caplog.text
