"""Receiving submissions: stored durably, duplicates and edits as OPENROSA.md says."""

from __future__ import annotations

import re

import pytest
from lxml import etree
from sqlalchemy.orm import selectinload

from server.extensions import db
from server.forms import operations as ops
from server.submissions.models import Submission
from tests.factories import PASSWORD, app_user_with_forms, counts, multipart

PHOTO_FORM = """
| survey   |        |        |          |
|          | type   | name   | label    |
|          | text   | name   | Name     |
|          | image  | photo  | Photo    |
|          | image  | sign   | Signature |
| settings |        |        |          |
|          | form_id | version |         |
|          | photos | 1      |          |
"""


def submission_xml(
    instance="uuid:0001", name="Amina", photo="p.jpg", sign="s.png", extra="", version="1"
):
    return (
        f'<data id="photos" version="{version}"><name>{name}</name><photo>{photo}</photo>'
        f"<sign>{sign}</sign><meta><instanceID>{instance}</instanceID>{extra}</meta></data>"
    ).encode()


@pytest.fixture
def phone(app, client):
    """(post, token): post(body) sends to the app-user submission URL."""
    from tests.factories import Factories

    with app.app_context():
        make = Factories()
        project = make.project()
        make.form(PHOTO_FORM)
        _, token = app_user_with_forms(project)

    def post(data, **kwargs):
        return client.post(
            f"/v1/key/{token}/projects/1/submission?deviceID=collect:test",
            data=data,
            content_type="multipart/form-data",
            **kwargs,
        )

    post.token = token
    return post


def _message(response) -> str:
    root = etree.fromstring(response.data)
    return root.findtext("{http://openrosa.org/http/response}message")


def _submissions(app):
    with app.app_context():
        query = db.select(Submission).options(selectinload(Submission.attachments))
        return db.session.scalars(query.order_by(Submission.id)).all()


def test_head_then_post_is_201_with_a_message(phone, client, app):
    head = client.head(f"/v1/key/{phone.token}/projects/1/submission")
    assert head.status_code == 204
    assert head.headers["X-OpenRosa-Accept-Content-Length"] == "100000000"
    assert head.headers["X-OpenRosa-Version"] == "1.0"
    response = phone(multipart(submission_xml(), {"p.jpg": b"jpeg", "s.png": b"png"}))
    assert response.status_code == 201
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert "received" in _message(response)
    (submission,) = _submissions(app)
    assert submission.device_id == "collect:test"
    assert submission.complete and submission.state == "queued"


def test_retry_with_same_xml_adds_files_and_never_a_second_record(phone, app):
    assert phone(multipart(submission_xml(), {"p.jpg": b"jpeg"})).status_code == 201
    first = _submissions(app)[0]
    assert first.missing_attachments == ["s.png"]
    again = phone(multipart(submission_xml(), {"p.jpg": b"jpeg", "s.png": b"png"}))
    assert again.status_code == 201
    assert "already received" in _message(again)
    (only,) = _submissions(app)
    assert only.complete


def test_same_instance_id_different_xml_is_409(phone, app):
    phone(multipart(submission_xml(name="Amina")))
    conflict = phone(multipart(submission_xml(name="Someone else")))
    assert conflict.status_code == 409
    assert "same instanceID" in _message(conflict)
    assert len(_submissions(app)) == 1


def test_edit_with_deprecated_id_makes_a_new_version(phone, app):
    phone(multipart(submission_xml()))
    edit = submission_xml(
        instance="uuid:0002", name="Amina B.", extra="<deprecatedID>uuid:0001</deprecatedID>"
    )
    assert phone(multipart(edit)).status_code == 201
    original, edited = _submissions(app)
    assert not original.current and edited.current
    assert edited.root_instance_id == "uuid:0001" and edited.deprecated_id == "uuid:0001"
    stale = submission_xml(instance="uuid:0003", extra="<deprecatedID>uuid:0001</deprecatedID>")
    assert phone(multipart(stale)).status_code == 409
    unknown = submission_xml(instance="uuid:0004", extra="<deprecatedID>uuid:nope</deprecatedID>")
    assert phone(multipart(unknown)).status_code == 404


def test_split_submission_is_assembled(phone, app):
    xml = submission_xml()
    part_one = phone(multipart(xml, {"p.jpg": b"jpeg"}, incomplete=True))
    assert part_one.status_code == 201
    part_two = phone(multipart(xml, {"s.png": b"png"}))
    assert part_two.status_code == 201
    (submission,) = _submissions(app)
    assert submission.complete
    assert {a.name for a in submission.attachments} == {"p.jpg", "s.png"}


def test_enketo_literal_filename_is_accepted(phone, app):
    response = phone(multipart(submission_xml(), filename="xml_submission_file"))
    assert response.status_code == 201


class UnreachableRedis:
    """In place of `redis_connection()`: every command fails as a down Redis does."""

    def __getattr__(self, name):
        from redis.exceptions import ConnectionError as RedisConnectionError

        raise RedisConnectionError("down")


def test_redis_down_still_accepts_and_the_reconciler_enqueues_later(phone, app, monkeypatch):
    from server.extensions import queue
    from server.submissions import queueing

    monkeypatch.setattr(queueing, "redis_connection", UnreachableRedis)
    assert phone(multipart(submission_xml())).status_code == 201
    assert _submissions(app)[0].state == "received"
    monkeypatch.undo()
    with app.app_context():
        assert queueing.reconcile() == 1
        assert queue("submissions").count == 1  # a batch job, woken
    assert _submissions(app)[0].state == "queued"


def _background_waker(app, monkeypatch):
    """The production way: the 201 first, then this process's thread wakes the queue."""
    monkeypatch.setitem(app.config, "WAKE_IN_BACKGROUND", True)
    monkeypatch.delitem(app.extensions, "casebridge_waker", raising=False)

    def settle() -> None:
        assert app.extensions["casebridge_waker"].settle(timeout=10)

    return settle


def test_woken_in_the_background_every_submission_gets_a_batch_job(phone, app, monkeypatch):
    from server.extensions import queue
    from server.submissions import queueing

    settle = _background_waker(app, monkeypatch)
    for i in range(12):
        assert phone(multipart(submission_xml(f"uuid:bg{i}"))).status_code == 201
    settle()
    with app.app_context():
        assert queue("submissions").count == 1  # one batch job for all of them
        assert queueing.redis_connection().get(queueing.WAKE_KEY) is not None
    assert {s.state for s in _submissions(app)} == {"queued"}


def test_woken_in_the_background_with_redis_down_they_stay_received(phone, app, monkeypatch):
    from server.submissions import queueing

    settle = _background_waker(app, monkeypatch)
    monkeypatch.setattr(queueing, "redis_connection", UnreachableRedis)
    assert phone(multipart(submission_xml("uuid:bg1"))).status_code == 201
    assert phone(multipart(submission_xml("uuid:bg2"))).status_code == 201
    settle()
    assert [s.state for s in _submissions(app)] == ["received", "received"]


def test_marking_received_never_takes_back_a_claimed_submission(phone, app):
    """Redis failing after the commit must not undo a batch job's claim made meanwhile."""
    from server.submissions import queueing

    assert phone(multipart(submission_xml("uuid:c1"))).status_code == 201
    with app.app_context():
        assert queueing.claim("job-1", 10)
        submission = db.session.scalar(db.select(Submission))
        queueing.mark_received(queueing.key_of(submission))
        db.session.commit()
    assert [(s.state, s.job_id) for s in _submissions(app)] == [("queued", "job-1")]


HOSTILE = {
    "malformed-xml": (lambda: multipart(b"<data id='photos'><unclosed>"), 400, "not well-formed"),
    "xxe": (
        lambda: multipart(
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<data id="photos" version="1"><name>&x;</name><meta><instanceID>uuid:x</instanceID></meta></data>'
        ),
        400,
        "DTD or entities",
    ),
    "billion-laughs": (
        lambda: multipart(
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            b'<data id="photos" version="1"><name>&b;</name><meta><instanceID>uuid:x</instanceID></meta></data>'
        ),
        400,
        "DTD or entities",
    ),
    "unknown-form": (
        lambda: multipart(submission_xml().replace(b'id="photos"', b'id="nope"')),
        404,
        "not on this server",
    ),
    "unknown-version": (lambda: multipart(submission_xml(version="9")), 409, "Version '9'"),
    "no-instance-id": (
        lambda: multipart(b'<data id="photos" version="1"><name>x</name></data>'),
        400,
        "instanceID",
    ),
    "no-xml-part": (
        lambda: {"p.jpg": (__import__("io").BytesIO(b"x"), "p.jpg")},
        400,
        "xml_submission_file",
    ),
    "dotdot-name": (
        lambda: multipart(submission_xml(), {"../../etc/p.jpg": b"x"}),
        400,
        "plain file name",
    ),
    "absolute-name": (
        lambda: multipart(submission_xml(photo="/etc/passwd")),
        400,
        "plain file name",
    ),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_submissions_are_refused_and_store_nothing(phone, app, case):
    build, status, words = HOSTILE[case]
    with app.app_context():
        before = counts()
    storage_root = __import__("pathlib").Path(app.instance_path) / "storage"
    files_before = sorted(storage_root.rglob("*")) if storage_root.exists() else []
    response = phone(build())
    assert response.status_code == status, _message(response)
    assert words in _message(response)
    with app.app_context():
        assert counts() == before
    files_after = sorted(storage_root.rglob("*")) if storage_root.exists() else []
    assert files_after == files_before


def test_wrong_content_type_is_400(phone, client):
    response = client.post(
        f"/v1/key/{phone.token}/projects/1/submission", data=b"<data/>", content_type="text/xml"
    )
    assert response.status_code == 400
    assert "multipart/form-data" in _message(response)


def test_closing_form_is_not_listed_but_still_accepts(phone, app, client):
    with app.app_context():
        form = db.session.scalar(db.select(ops.Form).where(ops.Form.xml_form_id == "photos"))
        form.state = "closing"
        db.session.commit()
    listed = client.get(f"/v1/key/{phone.token}/projects/1/formList")
    assert b"photos" not in listed.data
    assert phone(multipart(submission_xml())).status_code == 201


def test_closed_form_refuses_with_a_message(phone, app):
    with app.app_context():
        form = db.session.scalar(db.select(ops.Form).where(ops.Form.xml_form_id == "photos"))
        form.state = "closed"
        db.session.commit()
    response = phone(multipart(submission_xml()))
    assert response.status_code == 409
    assert "closed" in _message(response)
    assert _submissions(app) == []


def test_oversize_is_413_and_stores_nothing(phone, app):
    app.config["OPENROSA_MAX_SUBMISSION_BYTES"] = 2000
    try:
        response = phone(multipart(submission_xml(), {"p.jpg": b"x" * 5000}))
    finally:
        app.config["OPENROSA_MAX_SUBMISSION_BYTES"] = 100_000_000
    assert response.status_code == 413
    assert _submissions(app) == []


def test_bad_or_revoked_token_is_403_not_401(client, app, phone):
    bad = client.head("/v1/key/not-a-token/projects/1/submission")
    assert bad.status_code == 403 and "WWW-Authenticate" not in bad.headers
    from server.appusers.models import AppUser
    from server.appusers.operations import revoke

    with app.app_context():
        revoke(db.session.scalar(db.select(AppUser)))
        db.session.commit()
    assert client.get(f"/v1/key/{phone.token}/projects/1/formList").status_code == 403


def test_admin_changes_take_effect_on_the_next_request(client, app, phone):
    """Tokens, forms and versions are remembered between requests (server.cache), yet a
    revocation, a withdrawn form or a closed form applies at once, in every process."""
    from server.appusers.models import AppUser, AppUserForm
    from server.appusers.operations import revoke

    url = f"/v1/key/{phone.token}/projects/1/submission"
    assert phone(multipart(submission_xml("uuid:a1"))).status_code == 201  # remembered now
    with app.app_context():
        form = db.session.scalar(db.select(ops.Form).where(ops.Form.xml_form_id == "photos"))
        form.state = "closed"
        db.session.commit()
    assert phone(multipart(submission_xml("uuid:a2"))).status_code == 409
    with app.app_context():
        db.session.scalar(db.select(ops.Form)).state = "open"
        db.session.commit()
    assert phone(multipart(submission_xml("uuid:a1"))).status_code == 201  # a retry
    with app.app_context():
        db.session.execute(db.delete(AppUserForm))  # a bulk delete counts as a change too
        db.session.commit()
    assert phone(multipart(submission_xml("uuid:a3"))).status_code == 404
    assert client.head(url).status_code == 204
    with app.app_context():
        revoke(db.session.scalar(db.select(AppUser)))
        db.session.commit()
    assert client.head(url).status_code == 403
    assert phone(multipart(submission_xml("uuid:a4"))).status_code == 403
    assert [s.instance_id for s in _submissions(app)] == ["uuid:a1"]


def test_another_process_sees_a_revocation_within_the_check_interval(
    app, client, phone, monkeypatch
):
    """Another web process trusts the generation it read for GENERATION_CHECK_SECONDS, so
    it asks Redis once per interval, not once per request, and refuses a revoked token
    once the interval has passed."""
    import time

    from redis import Redis

    from server import cache, create_app
    from server.appusers.models import AppUser
    from server.appusers.operations import revoke

    monkeypatch.setattr(cache, "GENERATION_CHECK_SECONDS", 0.3)
    other = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
        },
    )
    url = f"/v1/key/{phone.token}/projects/1/submission"
    redis = Redis.from_url(app.config["REDIS_URL"])

    def gets() -> int:
        return redis.info("commandstats").get("cmdstat_get", {}).get("calls", 0)

    try:
        other_client = other.test_client()
        assert other_client.head(url).status_code == 204
        before = gets()
        for _ in range(20):
            assert other_client.head(url).status_code == 204
        assert gets() - before <= 1
        with app.app_context():
            revoke(db.session.scalar(db.select(AppUser)))
            db.session.commit()
        assert client.head(url).status_code == 403  # the process that changed it: at once
        time.sleep(0.35)
        assert other_client.head(url).status_code == 403  # the other: within the interval
    finally:
        with other.app_context():
            db.engine.dispose()


def test_database_down_is_503_so_the_phone_retries(app, tmp_path):
    from server import create_app

    broken = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing/dir/db.sqlite3",
            "REDIS_URL": app.config["REDIS_URL"],
        },
    )
    response = broken.test_client().post(
        "/v1/key/abc/projects/1/submission",
        data=multipart(submission_xml()),
        content_type="multipart/form-data",
    )
    assert response.status_code == 503
    assert "safe on the phone" in _message(response)
    with broken.app_context():
        db.engine.dispose()


def test_submissions_read_back_byte_identical(phone, client, make_admin_token):
    xml = submission_xml()
    phone(multipart(xml, {"p.jpg": b"jpeg-bytes"}))
    auth = {"Authorization": f"Bearer {make_admin_token}"}
    back = client.get("/v1/projects/1/forms/photos/submissions/uuid:0001.xml", headers=auth)
    assert back.data == xml
    photo = client.get(
        "/v1/projects/1/forms/photos/submissions/uuid:0001/attachments/p.jpg", headers=auth
    )
    assert photo.data == b"jpeg-bytes"
    listing = client.get("/v1/projects/1/forms/photos/submissions", headers=auth).json
    assert listing[0]["instanceId"] == "uuid:0001" and listing[0]["missingAttachments"] == ["s.png"]


def test_reading_a_submission_back_is_audited_with_ids_only(phone, client, app, make_admin_token):
    from server.audit.models import AuditEvent

    phone(multipart(submission_xml(name="Amina Sokha"), {"p.jpg": b"jpeg-bytes"}))
    auth = {"Authorization": f"Bearer {make_admin_token}"}
    base = "/v1/projects/1/forms/photos/submissions"
    assert client.get(f"{base}/uuid:0001.xml", headers=auth).status_code == 200
    assert client.get(f"{base}/uuid:0001/attachments/p.jpg", headers=auth).status_code == 200
    assert client.get(f"{base}/uuid:0001/attachments/s.png", headers=auth).status_code == 404
    assert client.get(f"{base}/uuid:Amina.xml", headers=auth).status_code == 404
    with app.app_context():
        [submission] = _submissions(app)
        events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
        seen = [(e.action, e.object_type, e.object_id) for e in events if e.action != "login"]
        assert seen == [
            ("submission.view", "submission", str(submission.id)),
            ("submission.attachment", "submission", str(submission.id)),
            ("submission.refused", "form", str(submission.form_id)),  # the unknown instance
        ]
        photo = next(a for a in submission.attachments if a.name == "p.jpg")
        attached = next(e for e in events if e.action == "submission.attachment")
        assert attached.details == {
            "form_id": submission.form_id,
            "case_id": None,
            "via": "api",
            "attachment_id": photo.id,
        }
        recorded = " ".join(f"{e.object_id} {e.details}" for e in events)
        assert "Amina" not in recorded and "p.jpg" not in recorded and "uuid:" not in recorded


@pytest.fixture
def make_admin_token(app, client):
    from tests.factories import Factories

    with app.app_context():
        admin = Factories().user("admin")
        name = admin.name
    return client.post("/v1/sessions", json={"email": name, "password": PASSWORD}).json["token"]


def test_no_personal_data_in_logs(phone, caplog):
    caplog.set_level("DEBUG")
    phone(multipart(submission_xml(name="Secret Person")))
    assert "Secret Person" not in caplog.text
    assert not re.search(r"uuid:0001", caplog.text)


def test_two_copies_arriving_at_once_make_one_record(phone, app, monkeypatch):
    """The other copy is committed between our duplicate check and our commit (before our
    first write: on SQLite, storing a small attachment in the database takes the write
    lock, so nobody else commits after that)."""
    from server.submissions import operations

    original_save = operations._save_files
    raced = []

    def race_then_save(files):
        if not raced:
            raced.append(True)
            with app.app_context():  # another request, its own session, commits first
                operations.receive(
                    submission_xml(),
                    [],
                    find_form=lambda form_id: db.session.scalar(
                        db.select(ops.Form).where(ops.Form.xml_form_id == form_id)
                    ),
                    submitter=operations.Submitter(),
                )
                db.session.commit()
        return original_save(files)

    monkeypatch.setattr(operations, "_save_files", race_then_save)
    response = phone(multipart(submission_xml(), {"p.jpg": b"jpeg"}))
    assert response.status_code == 201
    assert "already received" in _message(response)
    (only,) = _submissions(app)
    assert only.missing_attachments == ["s.png"]  # our copy's photo was kept
