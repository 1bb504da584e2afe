"""Submissions are normalized in batches: one job per batch, one bad submission fails alone."""

from __future__ import annotations

import pytest
from flask import current_app
from sqlalchemy import func, select

from server.cases.models import Case, CaseVersion
from server.extensions import db, queue
from server.submissions import jobs, queueing
from server.submissions.models import Submission
from tests.cases_support import (
    drain,
    follow_up_xml,
    mapped_forms_phone,
    post,
    screening_xml,
)


@pytest.fixture
def phone(app, make):
    return mapped_forms_phone(make)


def rows() -> list[Submission]:
    db.session.rollback()  # what the worker committed
    return list(db.session.scalars(select(Submission).order_by(Submission.id)))


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def post_screenings(client, phone, n: int) -> list[str]:
    uuids = []
    for _ in range(n):
        xml, _, case_uuid = screening_xml()
        assert post(client, *phone, xml).status_code == 201
        uuids.append(case_uuid)
    return uuids


def test_many_posts_wake_one_batch_job_that_normalizes_them_in_one_go(
    phone, client, runner, app_context
):
    uuids = post_screenings(client, phone, 5)
    assert queue("submissions").count == 1, "one batch job, not one job per submission"
    [job] = queue("submissions").jobs
    gather_s = current_app.config["NORMALIZE_GATHER_MS"] / 1000
    assert job.args == (gather_s,), "woken by arrivals, it waits to take more at once"
    drain(runner)
    submissions = rows()
    assert {s.state for s in submissions} == {"normalized"}
    assert len({s.job_id for s in submissions}) == 1, "all five in the same batch"
    assert set(db.session.scalars(select(Case.uuid))) == set(uuids)


def test_a_full_batch_wakes_another_job_so_every_worker_gets_a_share(
    phone, client, runner, app, app_context, monkeypatch
):
    monkeypatch.setitem(app.config, "NORMALIZE_BATCH_SIZE", 2)
    post_screenings(client, phone, 5)
    queue("submissions").empty()
    assert jobs.normalize_queued() == 2
    assert queue("submissions").count == 1, "a full batch woke the next job before working"
    assert queue("submissions").jobs[0].args == (0.0,), "more are waiting: no gathering"
    drain(runner)
    submissions = rows()
    assert {s.state for s in submissions} == {"normalized"} and count(Case) == 5
    assert len({s.job_id for s in submissions}) == 3  # 2 + 2 + 1


def test_a_follow_up_in_the_batch_of_its_screening_finds_the_new_case(
    phone, client, runner, app_context
):
    screening, _, case_uuid = screening_xml()
    follow_up, follow_up_id = follow_up_xml(case_uuid, base_version=1, status="closed")
    post(client, *phone, screening)
    post(client, *phone, follow_up)
    drain(runner)
    assert [s.state for s in rows()] == ["normalized", "normalized"]
    assert len({s.job_id for s in rows()}) == 1, "no job of its own was needed"
    case = db.session.scalar(select(Case))
    assert case.uuid == case_uuid and case.status == "Closed" and case.version == 2


def test_an_edit_in_the_batch_of_its_original_changes_the_same_case(
    phone, client, runner, app_context
):
    original, original_id, case_uuid = screening_xml(children="2")
    edited, _, _ = screening_xml(case_id=case_uuid, instance_id=original_id, children="3")
    edited = edited.replace(
        f"<instanceID>{original_id}</instanceID>".encode(),
        f"<deprecatedID>{original_id}</deprecatedID><instanceID>uuid:edit</instanceID>".encode(),
    )
    post(client, *phone, original)
    post(client, *phone, edited)
    drain(runner)
    assert [s.state for s in rows()] == ["normalized", "normalized"]
    assert count(Case) == 1 and count(CaseVersion) == 2
    assert db.session.scalar(select(Case)).person.number_of_children == 3


def test_one_bad_submission_fails_alone_and_the_rest_of_its_batch_is_normalized(
    phone, client, runner, app, app_context, monkeypatch
):
    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", [])
    bad_xml, bad_id, _ = screening_xml(first="Boom")
    post_screenings(client, phone, 2)
    post(client, *phone, bad_xml)
    real_normalize = jobs.normalize

    def normalize(submission, *args, **kwargs):
        if submission.instance_id == bad_id:
            raise RuntimeError("a bug this submission triggers")
        return real_normalize(submission, *args, **kwargs)

    monkeypatch.setattr(jobs, "normalize", normalize)
    drain(runner)
    states = {s.instance_id: s.state for s in rows()}
    assert states.pop(bad_id) == "failed"
    assert set(states.values()) == {"normalized"} and count(Case) == 2
    bad = next(s for s in rows() if s.instance_id == bad_id)
    assert bad.problem == "RuntimeError while normalizing; see the worker log."
    assert bad.job_id.startswith("submission-"), "it was handed a job of its own"


def test_claims_never_overlap_and_a_retried_job_takes_back_what_it_held(phone, client, app_context):
    post_screenings(client, phone, 5)
    first = queueing.claim("job-a", 2)
    second = queueing.claim("job-b", 2)
    assert len(first) == len(second) == 2 and not set(first) & set(second)
    assert queueing.claim("job-a", 5) == sorted([*first, rows()[-1].id])
    assert queueing.claim("job-c", 5) == []


def test_the_reconciler_puts_back_what_a_lost_job_held_and_wakes_a_batch(
    phone, client, runner, app_context
):
    post_screenings(client, phone, 3)
    queue("submissions").empty()
    queueing.clear_wake()
    held = queueing.claim("job-that-redis-forgot", 10)
    assert len(held) == 3
    assert queueing.reconcile() == 3
    assert {s.job_id for s in rows()} == {None} and queue("submissions").count == 1
    drain(runner)
    assert {s.state for s in rows()} == {"normalized"}
