"""The queue page: its status read from real submissions and a real Redis, retry and
discard of failed submissions, who may see it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from sqlalchemy import select

from server.admin import queue_status as qs
from server.admin.operations import NotFailed, discard_failed, retry_failed
from server.audit.models import AuditEvent
from server.extensions import db, redis_connection
from server.pages.queue import duration
from server.submissions.models import Submission
from server.submissions.queueing import reconcile
from server.worker import CaseBridgeWorker
from tests.admin_support import OUTSIDERS, assert_admins_only
from tests.cases_support import (
    FOLLOW_UP_MD,
    SCREENING_MD,
    drain,
    follow_up_xml,
    post,
    screening_xml,
)
from tests.factories import app_user_with_forms, csrf_protected_client, csrf_token


@pytest.fixture
def phone(app, make, monkeypatch):
    """The mapped screening and follow-up forms and an app user for both; no job retries,
    so a job's first failure is final (as after its last retry)."""
    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", [])
    project = make.project()
    make.form(SCREENING_MD, project=project)
    make.form(FOLLOW_UP_MD, project=project)
    _, token = app_user_with_forms(project)
    return project.id, token


@pytest.fixture
def send(phone, client):
    """send(): post one screening as a phone would; its instanceID."""

    def send_one() -> str:
        xml, instance_id, _ = screening_xml()
        assert post(client, *phone, xml).status_code == 201
        return instance_id

    return send_one


@pytest.fixture
def fail_send(send, runner, monkeypatch):
    """fail_send(): a screening whose normalization raises; drained, so it is 'failed'."""

    def broken(*args, **kwargs):
        raise RuntimeError("Sokha Chan, born 1995")  # a message that carries values

    def send_failing() -> SimpleNamespace:
        with monkeypatch.context() as patch:
            patch.setattr("server.cases.operations._derive", broken)
            instance_id = send()
            drain(runner)
        row = submission(instance_id)
        assert row.state == "failed"
        return SimpleNamespace(id=row.id, instance_id=instance_id, job_id=row.job_id)

    return send_failing


def submission(instance_id: str) -> Submission:
    db.session.expire_all()
    return db.session.scalar(select(Submission).where(Submission.instance_id == instance_id))


# ---- the status, from real data -----------------------------------------------------------


def test_status_counts_every_state_per_form_and_finds_the_oldest_waiting(
    app_context, phone, client, runner, send, fail_send
):
    normalized = send()
    drain(runner)
    failed = fail_send()
    follow_up, review_id = follow_up_xml("4b1b8c0e-0000-4000-8000-000000000000", base_version=1)
    post(client, *phone, follow_up)
    drain(runner)
    waiting = send()  # not drained: stays queued

    status = qs.queue_status()

    assert status.redis_ok
    by_form = {f.xml_form_id: f for f in status.by_form}
    assert by_form["mini_screening"].counts == {
        "received": 0,
        "queued": 1,
        "normalized": 1,
        "needs_review": 0,
        "failed": 1,
        "discarded": 0,
    }
    assert by_form["mini_follow_up"].counts["needs_review"] == 1
    assert by_form["mini_screening"].total == 3 and by_form["mini_follow_up"].total == 1
    assert status.oldest_waiting.submission_id == submission(waiting).id
    assert status.oldest_waiting.state == "queued" and status.oldest_waiting.age_seconds >= 0
    assert [f.submission_id for f in status.failed] == [failed.id] and status.failed_total == 1
    assert status.failed[0].problem == "RuntimeError while normalizing; see the worker log."
    assert [r.submission_id for r in status.needs_review] == [submission(review_id).id]
    assert status.needs_review[0].problem_fields  # field names, no messages
    depth = {q.name: q for q in status.queues}
    assert depth["submissions"].waiting == 1 and depth["submissions"].failed == 1
    assert len(status.per_minute) == 60 and status.per_minute_total == 4
    assert submission(normalized).state == "normalized"


def test_nothing_a_person_submitted_reaches_the_status(app_context, fail_send):
    fail_send()
    text = repr(qs.queue_status().as_dict())
    assert "Sokha" not in text and "1995" not in text and "uuid:" not in text


def test_submissions_per_minute_buckets_by_the_database_clock(app_context, send):
    for _ in range(3):
        send()
    per_minute = qs.submissions_per_minute(qs.database_now())
    assert sum(m.count for m in per_minute) == 3
    assert sum(m.count for m in per_minute[-2:]) == 3, "counted in the current minute"
    assert [len(m.minute) for m in per_minute] == [5] * 60  # "HH:MM"


def test_a_registered_worker_is_listed_with_its_queues(app_context):
    connection = redis_connection()
    worker = CaseBridgeWorker([Queue("submissions", connection=connection)], connection=connection)
    worker.register_birth()
    try:
        [listed] = qs.workers_alive(connection)
    finally:
        worker.register_death()
    assert listed.name == worker.name and listed.queues == ["submissions"]
    assert listed.current_job is None and listed.seconds_since_heartbeat is not None
    assert listed.state == "unknown"  # RQ's "?" until the worker says
    assert qs.workers_alive(connection) == []


def test_a_busy_worker_shows_what_it_runs_without_the_arguments(app_context, redis_url):
    """A real RQ worker in another process, running a job that takes a few seconds."""
    Queue("default", connection=redis_connection()).enqueue(time.sleep, 4)
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "rq"),
            "worker",
            "--burst",
            "--url",
            redis_url,
            "default",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        busy = []
        while not busy and time.monotonic() < deadline:
            busy = [w for w in qs.workers_alive(redis_connection()) if w.current_job]
            time.sleep(0.2)
        assert [w.current_job for w in busy] == ["sleep"], "RQ's description: 'time.sleep(4)'"
        assert busy[0].queues == ["default"] and busy[0].state == "busy"
    finally:
        worker.wait(timeout=30)


def test_a_running_job_is_named_without_its_arguments(app_context):
    from server.submissions.jobs import process_submission

    default = Job.create(process_submission, args=(1, "uuid:secret"), connection=redis_connection())
    ours = Job.create(
        process_submission,
        args=(1, "uuid:secret"),
        description="submission of form 1",
        connection=redis_connection(),
    )

    class Busy:  # an RQ 2 worker (RQ 3 workers are asked for their executions)
        def __init__(self, job):
            self.job = job

        def get_current_job(self):
            return self.job

    assert "secret" in default.description  # what RQ would have shown
    assert qs._job_summary(Busy(default)) == "process_submission"
    assert qs._job_summary(Busy(ours)) == "process_submission: submission of form 1"
    assert qs._job_summary(Busy(None)) is None


def test_without_redis_the_database_half_is_still_shown(app_context, send, monkeypatch):
    send()
    monkeypatch.setattr(qs, "redis_connection", lambda: Redis.from_url("redis://127.0.0.1:1"))
    status = qs.queue_status()
    assert not status.redis_ok and status.queues == [] and status.workers == []
    assert status.oldest_waiting is not None


def test_durations_read_as_people_say_them():
    assert [duration(s) for s in (0, 45, 200, 7500, 3 * 86400 + 4 * 3600)] == [
        "0 s",
        "45 s",
        "3 min 20 s",
        "2 h 5 min",
        "3 d 4 h",
    ]


# ---- retry and discard ----------------------------------------------------------------------


def test_retry_requeues_a_failed_submission_which_is_normalized_after_draining(
    app_context, admin_client, fail_send, runner
):
    failed = fail_send()
    failed_jobs = Queue("submissions", connection=redis_connection()).failed_job_registry
    assert failed_jobs.count == 1

    response = admin_client.post(f"/admin/queue/submissions/{failed.id}/retry")

    assert response.status_code == 302 and response.location.endswith("/admin/queue")
    assert submission(failed.instance_id).state == "queued"
    assert failed_jobs.count == 0
    drain(runner)
    row = submission(failed.instance_id)
    assert (row.state, row.problem) == ("normalized", None)
    assert "is queued again" in admin_client.get("/admin/queue").text
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "submission.retry"))
    assert (event.object_type, event.object_id, event.address) == (
        "submission",
        str(failed.id),
        "127.0.0.1",
    )
    assert event.user_id is not None and "form_id" in event.details


def test_retry_without_redis_leaves_it_received_for_the_reconciler(
    app_context, fail_send, monkeypatch
):
    failed = fail_send()
    monkeypatch.setattr("server.submissions.queueing.wake", lambda: False)
    assert retry_failed(failed.id, by_user_id=1) == "received"
    assert submission(failed.instance_id).state == "received"


def test_discard_keeps_the_submission_and_takes_it_off_the_failed_list(
    app_context, admin_client, fail_send
):
    failed = fail_send()

    response = admin_client.post(f"/admin/queue/submissions/{failed.id}/discard")

    assert response.status_code == 302
    row = submission(failed.instance_id)
    assert row.state == "discarded" and row.xml and row.problem  # kept, with why it failed
    status = qs.queue_status()
    assert status.failed == [] and status.failed_total == 0
    assert {q.name: q.failed for q in status.queues}["submissions"] == 0
    assert not redis_connection().exists(f"rq:job:{row.job_id}")
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "submission.discard")
    )
    assert (event.object_type, event.object_id) == ("submission", str(failed.id))
    assert reconcile() == 0, "the reconciler leaves it alone"
    again = admin_client.post(f"/admin/queue/submissions/{failed.id}/retry", follow_redirects=True)
    assert "is not failed (it is discarded)" in again.text
    assert submission(failed.instance_id).state == "discarded"


def test_only_failed_submissions_can_be_retried_or_discarded(app_context, send, runner):
    instance_id = send()
    submission_id = submission(instance_id).id
    with pytest.raises(NotFailed):
        retry_failed(submission_id, by_user_id=1)
    with pytest.raises(NotFailed):
        discard_failed(submission_id, by_user_id=1)
    drain(runner)
    with pytest.raises(NotFailed):
        discard_failed(submission_id, by_user_id=1)
    assert submission(instance_id).state == "normalized"


def test_an_unknown_submission_is_404(admin_client):
    assert admin_client.post("/admin/queue/submissions/999/retry").status_code == 404
    assert admin_client.post("/admin/queue/submissions/999/discard").status_code == 404


# ---- the page and its JSON ------------------------------------------------------------------


def test_the_page_shows_the_status_and_offers_retry_and_discard(
    app_context, admin_client, fail_send
):
    failed = fail_send()
    page = admin_client.get("/admin/queue")
    assert page.status_code == 200
    text = page.text
    assert "Submission queue" in text and "mini_screening" in text
    assert f"/admin/queue/submissions/{failed.id}/retry" in text
    assert f"/admin/queue/submissions/{failed.id}/discard" in text
    assert "RuntimeError while normalizing" in text and "Sokha" not in text
    assert '<svg class="chart"' in text and 'src="/static/queue.js"' in text
    assert '<a href="/admin/queue" aria-current="page">Queue</a>' in text


def test_the_json_endpoint_carries_the_same_status_and_is_not_cached(
    app_context, admin_client, fail_send
):
    failed = fail_send()
    response = admin_client.get("/admin/queue.json")
    assert response.status_code == 200 and response.is_json
    assert response.headers["Cache-Control"] == "no-store"
    data = response.json
    assert set(data) >= {
        "as_of",
        "redis_ok",
        "queues",
        "workers",
        "per_minute",
        "by_form",
        "oldest_waiting",
        "failed",
        "needs_review",
        "per_minute_total",
        "per_minute_max",
        "states",
    }
    [item] = data["failed"]
    assert item["submission_id"] == failed.id
    assert item["retry_url"] == f"/admin/queue/submissions/{failed.id}/retry"
    assert item["discard_url"] == f"/admin/queue/submissions/{failed.id}/discard"


URLS = [
    ("get", "/admin/queue"),
    ("get", "/admin/queue.json"),
    ("post", "/admin/queue/submissions/1/retry"),
    ("post", "/admin/queue/submissions/1/discard"),
]


@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_only_admins_may_see_or_act(app, make, outsider):
    assert_admins_only(app, make, outsider, URLS, nav_link="/admin/queue")


def test_retry_and_discard_need_the_csrf_token(make, app, fail_send):
    failed = fail_send()
    admin = make.user("admin")
    with csrf_protected_client(app, admin.name) as client:
        for action in ("retry", "discard"):
            url = f"/admin/queue/submissions/{failed.id}/{action}"
            assert client.post(url).status_code == 400
        assert submission(failed.instance_id).state == "failed"
        token = csrf_token(client.get("/admin/queue").text)
        url = f"/admin/queue/submissions/{failed.id}/discard"
        assert client.post(url, data={"csrf_token": token}).status_code == 302
        assert submission(failed.instance_id).state == "discarded"
