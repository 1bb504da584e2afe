"""The `casebridge` command, and a real RQ worker on a real Redis."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.auth.models import User
from server.extensions import db, queue
from server.health import record_heartbeat
from tests.factories import PASSWORD, simple_form_md, xlsx_from_md

WITH_IMAGE = """
| survey   |        |        |         |          |
|          | type   | name   | label   | image    |
|          | note   | intro  | Welcome | logo.png |
| settings |        |        |         |          |
|          | form_id | version |        |          |
|          | welcome | 1      |         |          |
"""


def test_users_create_reads_the_password_from_stdin(runner, client):
    result = runner.invoke(
        args=["users", "create", "amina", "--role", "designer", "--password-stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    assert "Password" not in result.output  # never echoed back
    response = client.post(
        "/v1/sessions", json={"email": "amina", "password": "a long enough password"}
    )
    assert response.status_code == 200


def test_users_create_is_audited_without_name_or_password(runner, app_context, make):
    project = make.project()
    result = runner.invoke(
        args=["users", "create", "amina", "--role", "collector", "--project", str(project.id)]
    )
    assert result.exit_code == 0, result.output
    password = result.output.split("Password (shown once): ")[1].strip()
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.create"))
    user = db.session.scalar(select(User).where(User.name == "amina"))
    assert (event.user_id, event.object_type, event.object_id) == (None, "user", str(user.id))
    assert event.details == {
        "role": "collector",
        "projects": [project.id],
        "email_given": False,
        "via": "cli",
    }
    assert "amina" not in repr(event.details) and password not in repr(event.details)


def test_users_create_generates_a_password_once(runner):
    result = runner.invoke(args=["users", "create", "root", "--role", "admin"])
    assert result.exit_code == 0
    assert "Password (shown once):" in result.output
    again = runner.invoke(args=["users", "create", "root", "--role", "admin"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_forms_publish_with_media_then_list(runner, tmp_path):
    form = tmp_path / "welcome.xlsx"
    form.write_bytes(xlsx_from_md(WITH_IMAGE))
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"png")
    result = runner.invoke(args=["forms", "publish", str(form), "--media", str(logo)])
    assert result.exit_code == 0, result.output
    assert "welcome version 1: published" in result.output
    assert "Publishing" in result.output  # the progress bar
    again = runner.invoke(args=["forms", "publish", str(form)])
    assert "unchanged" in again.output
    listing = runner.invoke(args=["forms", "list"])
    assert "welcome\t1\topen" in listing.output


def test_forms_publish_draft(runner, tmp_path):
    form = tmp_path / "household.xlsx"
    form.write_bytes(xlsx_from_md(simple_form_md()))
    result = runner.invoke(args=["forms", "publish", str(form), "--draft"])
    assert result.exit_code == 0, result.output
    assert "draft saved" in result.output
    assert "household\t-\x20(+draft)" in runner.invoke(args=["forms", "list"]).output


def test_setup_is_idempotent_and_publishes_the_shipped_questionnaires(runner):
    first = runner.invoke(args=["setup"])
    assert first.exit_code == 0, first.output
    assert "Password (shown once)" in first.output
    for form_id in ("cb_screening", "cb_assistance", "cb_reintegration"):
        assert f"{form_id} version" in first.output
    second = runner.invoke(args=["setup"])
    assert second.exit_code == 0, second.output
    assert "Password" not in second.output
    assert second.output.count("unchanged") == 3


def test_setup_audits_the_first_admin_once(runner, app_context):
    assert runner.invoke(args=["setup"]).exit_code == 0
    assert runner.invoke(args=["setup"]).exit_code == 0
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.create"))
    admin = db.session.scalar(select(User).where(User.name == "admin"))
    assert (event.user_id, event.object_type, event.object_id) == (None, "user", str(admin.id))
    assert event.details == {"role": "admin", "projects": [], "email_given": False, "via": "cli"}


def test_the_flask_command_reaches_the_same_commands(app: Flask):
    assert {"users", "forms", "setup", "worker", "start"} <= set(app.cli.commands)
    from server.cli import main

    assert main.name == "casebridge"


def test_worker_runs_jobs_from_the_real_queue(app, runner, client):
    with app.app_context():
        job = queue("default").enqueue(record_heartbeat)
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        job.refresh()
        assert job.is_finished
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json["last_worker_heartbeat"] == job.return_value()
    assert health.json["database"] == "ok" and health.json["redis"] == "ok"


def test_worker_runs_at_a_lower_priority_than_the_web(app, runner, monkeypatch):
    """In a burst the phones' requests come first; normalization catches up after."""
    import os

    niced = []
    monkeypatch.setattr(os, "nice", niced.append)  # not the test process's own priority
    monkeypatch.setitem(app.config, "WORKER_NICE", 10)
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert niced == [10] and "niceness +10" in result.output
    from config import DefaultConfig

    assert DefaultConfig.WORKER_NICE > 0  # what `make run` and the Procfile's worker get


def test_health_reports_unreachable_redis(app, client):
    from server import create_app

    broken = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": "redis://127.0.0.1:1/0",
        },
    )
    response = broken.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["redis"].startswith("unreachable")
    with broken.app_context():
        db.session.remove()
        db.engine.dispose()  # its own engine: close its connections before they are collected


def test_config_production_refuses_the_default_secret(monkeypatch):
    import pytest

    from config import ConfigError, load_config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("CASEBRIDGE_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="default SECRET_KEY"):
        load_config("production")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    monkeypatch.setenv("CASEBRIDGE_MAX_FORM_UPLOAD_BYTES", "1234")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://db/casebridge")
    settings = load_config("production")
    assert settings["SECRET_KEY"] == "x" * 40
    assert settings["MAX_FORM_UPLOAD_BYTES"] == 1234
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db/casebridge"
    assert settings["SESSION_COOKIE_SECURE"] is True


def test_password_hashes_are_scrypt(make):
    user = make.user("viewer", password=PASSWORD)
    assert user.password_hash.startswith("scrypt:")


def test_worker_reconciles_lost_submissions_and_processes_them(app, runner, client):
    """Redis flushed after receipt: the worker re-enqueues on start and runs the job."""
    from redis import Redis

    from server.submissions.models import Submission
    from tests.factories import Factories, app_user_with_forms, multipart

    with app.app_context():
        make = Factories()
        project = make.project()
        make.form()
        _, token = app_user_with_forms(project)
    xml = b'<data id="household" version="1"><q_name>x</q_name><meta><instanceID>uuid:w1</instanceID></meta></data>'
    response = client.post(
        f"/v1/key/{token}/projects/1/submission",
        data=multipart(xml),
        content_type="multipart/form-data",
    )
    assert response.status_code == 201
    Redis.from_url(app.config["REDIS_URL"]).flushdb()  # the queue forgets the job
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert "1 submission(s) wait to be normalized" in result.output
    with app.app_context():
        submission = db.session.scalar(db.select(Submission))
        assert submission.state == "normalized"
        from rq.job import Job

        job = Job.fetch(submission.job_id, connection=Redis.from_url(app.config["REDIS_URL"]))
        assert job.is_finished and job.return_value() == 1  # the batch job that took it
