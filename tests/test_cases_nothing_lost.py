"""Nothing lost, shown with real processes: a worker killed mid-job, a flushed Redis.

The worker is a real `casebridge worker` process on the test database and Redis. To kill
it mid-job, the test holds a write lock the job needs (SQLite: BEGIN IMMEDIATE;
PostgreSQL: an EXCLUSIVE lock on the cases table), waits until the job has started and is
blocked inside its transaction, then sends SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq.job import Job, JobStatus
from sqlalchemy import func, select, text

from server.cases.models import Case, CaseVersion
from server.extensions import db, queue
from server.submissions.models import Submission
from tests.cases_support import SCREENING_MD, post, screening_xml
from tests.factories import app_user_with_forms

BIN = Path(sys.executable).parent
#: A worker's warm shutdown can take a minute: RQ joins its pubsub thread, which may be
#: waiting out redis-py's 60 s for a subscription (`run_in_thread(sleep_time=60)`).
STOP_SECONDS = 90


def worker_env(app) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CASEBRIDGE_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        CASEBRIDGE_INSTANCE_PATH=app.instance_path,
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=app.config["REDIS_URL"],
    )
    return env


def start_worker(app, log: Path, *args: str) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "casebridge"), "worker", *args],
            env=worker_env(app),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_worker_burst(app, log: Path) -> str:
    worker = start_worker(app, log, "--burst")
    assert worker.wait(120) == 0, log.read_text()
    return log.read_text()


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def state_of(submission_id: int) -> str:
    db.session.rollback()  # a fresh read of what the worker committed
    return db.session.get(Submission, submission_id).state


def the_batch_job() -> str:
    """The id of the one job a post woke: the batch job that will take the submission."""
    (job_id,) = queue("submissions").job_ids
    return job_id


@pytest.fixture
def screening(app, make, client):
    """One screening, received and queued; returns (submission id, job id, case uuid)."""
    project = make.project()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    xml, instance_id, case_uuid = screening_xml()
    assert post(client, project.id, token, xml).status_code == 201
    row = db.session.scalar(select(Submission).where(Submission.instance_id == instance_id))
    assert row.state == "queued"
    return row.id, the_batch_job(), case_uuid


def hold_write_lock(connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.begin()
        connection.execute(text("LOCK TABLE cases IN EXCLUSIVE MODE"))


def test_a_worker_killed_mid_job_makes_the_case_exactly_once_after_restart(
    app, app_context, screening, tmp_path
):
    submission_id, job_id, case_uuid = screening
    redis = Redis.from_url(app.config["REDIS_URL"])
    locker = db.engine.connect()
    if locker.dialect.name == "sqlite":
        locker = locker.execution_options(isolation_level="AUTOCOMMIT")
    hold_write_lock(locker)
    worker = start_worker(app, tmp_path / "killed.log")
    try:
        wait_until(
            lambda: Job.fetch(job_id, connection=redis).get_status() == JobStatus.STARTED,
            60,
            "the worker to start the job",
        )
        time.sleep(1.0)  # inside the job, waiting for the lock the test holds
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        locker.rollback() if locker.in_transaction() else locker.exec_driver_sql("ROLLBACK")
        locker.close()

    assert count(Case) == 0, "the killed job's transaction left nothing behind"
    assert db.session.get(Submission, submission_id).state == "queued"

    output = run_worker_burst(app, tmp_path / "restarted.log")
    assert "1 submission(s) wait to be normalized" in output
    db.session.expire_all()
    assert count(Case) == 1 and count(CaseVersion) == 1
    assert db.session.get(Submission, submission_id).state == "normalized"
    assert db.session.scalar(select(Case.uuid)) == case_uuid


def test_a_flushed_redis_loses_nothing_the_reconciler_requeues_it(
    app, app_context, screening, tmp_path
):
    submission_id, _, case_uuid = screening
    Redis.from_url(app.config["REDIS_URL"]).flushdb()  # restarted without persistence
    output = run_worker_burst(app, tmp_path / "worker.log")
    assert "1 submission(s) wait to be normalized" in output
    db.session.expire_all()
    assert db.session.get(Submission, submission_id).state == "normalized"
    assert db.session.scalar(select(Case.uuid)) == case_uuid and count(Case) == 1


def test_a_database_error_mid_job_is_retried_with_no_half_written_case(
    app, app_context, make, client, tmp_path, monkeypatch
):
    """The job's write waits for a lock past its timeout (a real database error), rolls
    back, and RQ retries it after the configured backoff, once the lock is gone. (On SQLite
    the batch job cannot even claim the submission; on PostgreSQL it claims it and fails
    writing the case.)"""
    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", [1, 1])
    project = make.project()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    xml, instance_id, case_uuid = screening_xml()
    assert post(client, project.id, token, xml).status_code == 201
    row = db.session.scalar(select(Submission).where(Submission.instance_id == instance_id))
    submission_id, job_id = row.id, the_batch_job()
    redis = Redis.from_url(app.config["REDIS_URL"])

    locker = db.engine.connect()
    if locker.dialect.name == "sqlite":
        locker = locker.execution_options(isolation_level="AUTOCOMMIT")
    hold_write_lock(locker)
    log = tmp_path / "worker.log"
    env_timeout = {"CASEBRIDGE_DATABASE_LOCK_TIMEOUT_MS": "500"}
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [str(BIN / "casebridge"), "worker"],
            env=worker_env(app) | env_timeout,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: Job.fetch(job_id, connection=redis).get_status() == JobStatus.SCHEDULED,
            60,
            "the first attempt to fail and a retry to be scheduled",
        )
        assert count(Case) == 0
        locker.rollback() if locker.in_transaction() else locker.exec_driver_sql("ROLLBACK")
        wait_until(
            lambda: state_of(submission_id) == "normalized",
            60,
            "the retry to normalize the submission",
        )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(STOP_SECONDS)
        locker.close()
    assert "will retry" in log.read_text()
    assert count(Case) == 1 and count(CaseVersion) == 1
    assert db.session.scalar(select(Case.uuid)) == case_uuid


def test_a_pool_of_worker_processes_makes_each_case_once(app, app_context, make, client, tmp_path):
    project = make.project()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    uuids = set()
    for _ in range(12):
        xml, _, case_uuid = screening_xml()
        assert post(client, project.id, token, xml).status_code == 201
        uuids.add(case_uuid)
    worker = start_worker(app, tmp_path / "pool.log", "--burst", "--processes", "2")
    assert worker.wait(120) == 0, (tmp_path / "pool.log").read_text()
    db.session.rollback()
    assert set(db.session.scalars(select(Case.uuid))) == uuids
    assert count(CaseVersion) == 12
    states = set(db.session.scalars(select(Submission.state)))
    assert states == {"normalized"}


def test_a_follow_up_taken_before_its_screening_waits_and_is_applied(
    app, app_context, make, client, tmp_path, monkeypatch
):
    """The update arrives first: its batch hands it a job of its own, retried with backoff
    until the screening has made the case."""
    from tests.cases_support import FOLLOW_UP_MD, follow_up_xml

    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", [1, 1, 1, 1, 1])
    project = make.project()
    make.form(SCREENING_MD, project=project)
    make.form(FOLLOW_UP_MD, project=project)
    _, token = app_user_with_forms(project)
    screening, _, case_uuid = screening_xml()
    follow_up, follow_up_id = follow_up_xml(case_uuid, base_version=1, status="closed")
    assert post(client, project.id, token, follow_up).status_code == 201
    follow_up_row = db.session.scalar(
        select(Submission.id).where(Submission.instance_id == follow_up_id)
    )

    def job_of_follow_up() -> str:
        db.session.rollback()
        return db.session.get(Submission, follow_up_row).job_id or ""

    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = subprocess.Popen(
            [str(BIN / "casebridge"), "worker"],
            env=worker_env(app),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(lambda: job_of_follow_up().startswith("submission-"), 60, "a job of its own")
        assert state_of(follow_up_row) == "queued"
        assert post(client, project.id, token, screening).status_code == 201
        wait_until(lambda: state_of(follow_up_row) == "normalized", 60, "the retried update")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(STOP_SECONDS)
    assert "submissions: submission of form" in log.read_text(), "handed to a job of its own"
    case = db.session.scalar(select(Case))
    assert case.uuid == case_uuid and case.status == "Closed" and case.version == 2
