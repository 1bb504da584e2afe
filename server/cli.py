"""The `casebridge` command (also reachable as `flask --app server ...`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import func, select

from server.extensions import db

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FORM_SUFFIXES = (".xlsx", ".xls", ".csv", ".xml")


def register_commands(app: Flask) -> None:
    from server.projects.keys_cli import keys
    from sync.cli import missions, sync_commands

    for command in (users, forms, submissions, keys, missions, sync_commands, setup, worker, start):
        app.cli.add_command(command)


def _create_app(*_args, **_kwargs) -> Flask:
    from server import create_app

    return create_app()


main = FlaskGroup(
    name="casebridge",
    create_app=_create_app,
    help="CaseBridge: form server and case system for counter-trafficking missions.",
)


# ---- users ----------------------------------------------------------------------------


@click.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["admin", "designer", "collector", "viewer"]), required=True
)
@click.option("--email", default=None, help="Optional e-mail, also accepted as a login.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--project", "project_ids", type=int, multiple=True, help="Give access to a project.")
@with_appcontext
def create_user_command(name, role, email, password_stdin, project_ids) -> None:
    """Create a user; without --password-stdin a password is generated and printed once."""
    from server.auth.operations import (
        UserExists,
        create_user,
        generate_password,
        record_user_created,
    )
    from server.projects.models import Project
    from server.projects.operations import add_member, default_project

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else generate_password()
    try:
        user = create_user(name, role, password, email=email)
    except (UserExists, ValueError) as error:
        raise click.ClickException(str(error)) from None
    projects = [db.session.get(Project, pid) for pid in project_ids] or [default_project()]
    if None in projects:
        raise click.ClickException("Unknown project id.")
    if role != "admin":
        for project in projects:
            add_member(project, user)
    record_user_created(
        user,
        [p.id for p in projects],
        email_given=email is not None,
        by_user_id=None,
        via="cli",
    )
    db.session.commit()
    click.echo(f"Created {role} '{name}'.")
    if not password_stdin:
        click.echo(f"Password (shown once): {password}")


# ---- forms ----------------------------------------------------------------------------


@click.group()
def forms() -> None:
    """Publish and list forms."""


def _form_files(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in FORM_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise click.ClickException(f"No such file or folder: {raw}")
    return files


@forms.command("publish")
@click.argument("paths", nargs=-1, required=True)
@click.option("--media", "media_paths", multiple=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--draft", is_flag=True, help="Save as a draft instead of publishing.")
@click.option(
    "--project", "project_id", type=int, default=None, help="Project id (default: first)."
)
@click.option("--force", is_flag=True, help="Publish even if ODK Validate refuses the form.")
@with_appcontext
def publish_command(paths, media_paths, draft, project_id, force) -> None:
    """Publish XLSForms or XForms (files or folders); exit 1 if any is refused."""
    files = _form_files(paths)
    media = [_upload(Path(p)) for p in media_paths]
    project = _project(project_id)
    failures = 0
    with click.progressbar(files, label="Publishing", file=sys.stderr, show_pos=True) as bar:
        outcomes = [(path, _publish_one(project, path, media, draft, force)) for path in bar]
    for path, (ok, lines) in outcomes:
        failures += not ok
        for line in lines:
            click.echo(f"{path.name}: {line}", err=not ok)
    if failures:
        raise click.ClickException(
            f"{failures} of {len(files)} form(s) refused; nothing else changed."
        )


def _upload(path: Path):
    from server.forms.operations import Upload

    return Upload(path.name, path.read_bytes())


def _project(project_id: int | None):
    from server.projects.models import Project
    from server.projects.operations import default_project

    if project_id is None:
        return default_project(current_app.config["DEFAULT_PROJECT_NAME"])
    project = db.session.get(Project, project_id)
    if project is None:
        raise click.ClickException(f"No project with id {project_id}.")
    return project


def _publish_one(
    project, path: Path, media: list, draft: bool, force: bool = False
) -> tuple[bool, list[str]]:
    """Publish one file in its own transaction; return (ok, lines to print)."""
    from server.forms import operations as ops
    from server.forms.problems import FormRejected

    try:
        prepared = ops.prepare_form(_upload(path), force=force)
        wanted = {name for name, _ in prepared.info.media}
        result = ops.publish_form(
            project, prepared, media=[m for m in media if m.filename in wanted], draft=draft
        )
    except FormRejected as rejection:
        db.session.rollback()
        return False, [f"error: {problem}" for problem in rejection.problems]
    except (ops.FormConflict, ops.AttachmentNotExpected) as conflict:
        db.session.rollback()
        return False, [f"error: {conflict}"]
    db.session.commit()
    version = result.form_def.version or "(no version)"
    state = "draft saved" if draft else ("published" if result.changed else "unchanged")
    lines = [f"{result.form.xml_form_id} version {version}: {state}"]
    lines += [f"warning: {w}" for w in prepared.warnings]
    missing = [a.name for a in result.form_def.missing_attachments]
    if missing:
        lines.append(f"warning: media still missing: {', '.join(missing)}")
    return True, lines


@forms.command("list")
@with_appcontext
def list_command() -> None:
    """List forms: project, id, current version, state, title."""
    from server.forms.models import Form

    rows = db.session.scalars(select(Form).order_by(Form.project_id, Form.xml_form_id))
    for form in rows:
        current = form.current_def
        shown = current or form.draft_def
        version = current.version if current else "-"
        draft = " (+draft)" if form.draft_def else ""
        title = shown.title if shown else ""
        click.echo(
            f"{form.project_id}\t{form.xml_form_id}\t{version}{draft}\t{form.state}\t{title}"
        )


# ---- submissions ----------------------------------------------------------------------


@click.group()
def submissions() -> None:
    """Watch and repair the submission queue."""


@submissions.command("reconcile")
@with_appcontext
def reconcile_command() -> None:
    """Queue again every submission still 'received', or held by a lost job; wake the queue."""
    from server.submissions.queueing import reconcile

    click.echo(f"{reconcile()} submission(s) wait to be normalized.")


@submissions.command("renormalize")
@click.option("--form", "xml_form_id", required=True, help="The form's id (xmlFormId).")
@click.option("--project", "project_id", type=int, help="Needed when two projects share the id.")
@with_appcontext
def renormalize_command(xml_form_id: str, project_id: int | None) -> None:
    """Rebuild the cases a form's submissions made, with its newest mapping.

    Run it after publishing a version that fixes the form's save_to mapping. The result is
    what a first run with the fixed mapping would give. One transaction: interrupted, it
    changes nothing.
    """
    from server.cases.renormalize import QueueBusy, plan_renormalization, renormalize
    from server.forms.models import Form

    query = select(Form).where(Form.xml_form_id == xml_form_id)
    if project_id is not None:
        query = query.where(Form.project_id == project_id)
    forms = list(db.session.scalars(query))
    if len(forms) != 1:
        problem = "No form" if not forms else "Several forms (give --project)"
        raise click.ClickException(f"{problem} with the id '{xml_form_id}'.")
    plan = plan_renormalization(forms[0])
    total = len(plan.submission_ids)
    try:
        with click.progressbar(length=total, label="Renormalizing", file=sys.stderr) as bar:
            result = renormalize(plan, progress=bar.update)
    except QueueBusy as busy:
        db.session.rollback()
        raise click.ClickException(str(busy)) from None
    db.session.commit()
    states = ", ".join(f"{n} {state}" for state, n in sorted(result.states.items()))
    click.echo(
        f"{result.submissions} submission(s) applied again ({states or 'none'}); "
        f"{result.cases_rebuilt} case(s) rebuilt."
    )


# ---- running --------------------------------------------------------------------------


@click.command()
@click.option("--forms-dir", default=str(PROJECT_ROOT / "xlsforms"), show_default=True)
@with_appcontext
def setup(forms_dir: str) -> None:
    """Apply migrations, make the default project and first admin, publish xlsforms/."""
    from flask_migrate import upgrade

    from server.auth.models import User
    from server.auth.operations import create_user, generate_password, record_user_created
    from server.projects.operations import default_project

    upgrade()
    project = default_project(current_app.config["DEFAULT_PROJECT_NAME"])
    if not db.session.scalar(select(func.count()).select_from(User)):
        password = generate_password()
        admin = create_user("admin", "admin", password)
        record_user_created(admin, [], email_given=False, by_user_id=None, via="cli")
        click.echo("First administrator created. User: admin  Password (shown once): " + password)
    db.session.commit()
    files = _form_files((forms_dir,)) if Path(forms_dir).is_dir() else []
    refused = 0
    with click.progressbar(files, label="Publishing questionnaires", file=sys.stderr) as bar:
        results = [(path, _publish_one(project, path, [], False)) for path in bar]
    for path, (ok, lines) in results:
        refused += not ok
        for line in lines:
            click.echo(f"  {path.name}: {line}", err=not ok)
    if refused:
        raise click.ClickException(f"{refused} questionnaire(s) in {forms_dir} were refused.")


@click.command()
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes (RQ's worker pool); one per core drains a backlog fastest.",
)
@with_appcontext
def worker(burst: bool, processes: int) -> None:
    """Run RQ workers on CaseBridge's queues, inside the app context.

    It first re-enqueues submissions the queue lost (Redis flushed or down), then keeps
    doing so every minute. It runs at WORKER_NICE: in a burst, phones' requests first.
    """
    from rq.worker_pool import WorkerPool

    from server.extensions import QUEUE_NAMES, queue, redis_connection
    from server.submissions.queueing import reconcile
    from server.worker import CaseBridgeWorker, schedule_reconcile

    nice = int(current_app.config["WORKER_NICE"])
    if nice > 0:
        os.nice(nice)  # inherited by the pool's processes and their work horses
        click.echo(f"Workers run at niceness +{nice} (WORKER_NICE): phones' requests first.")
    queues = [queue(name) for name in QUEUE_NAMES]
    waiting = reconcile()
    if waiting:
        click.echo(f"{waiting} submission(s) wait to be normalized; the queue is woken.")
    if not burst:
        schedule_reconcile(queue("default"))
    if processes == 1:
        worker = CaseBridgeWorker(queues, connection=redis_connection())
        worker.work(burst=burst, with_scheduler=True)
        return
    db.session.remove()
    db.engine.dispose()  # forked workers open their own database connections
    pool = WorkerPool(
        queues,
        connection=redis_connection(),
        num_workers=processes,
        worker_class=CaseBridgeWorker,
    )
    pool.start(burst=burst)


@click.command()
@click.option("--procfile", default=str(PROJECT_ROOT / "Procfile"), show_default=True)
@click.pass_context
def start(ctx: click.Context, procfile: str) -> None:
    """Run everything on embedded defaults: local Redis, migrations, forms, the Procfile."""
    from honcho.command import main as honcho_main

    from server.redis_local import default_data_dir, start_local_redis, stop

    app = current_app._get_current_object() if current_app else _create_app()
    env_redis = os.environ.get("REDIS_URL") or os.environ.get("CASEBRIDGE_REDIS_URL")
    redis_process = None
    if not env_redis:
        url, redis_process = start_local_redis(default_data_dir(app.instance_path))
        os.environ["REDIS_URL"] = url
        app.config["REDIS_URL"] = url
        click.echo(f"Local Redis: {url}")
    try:
        with app.app_context():
            ctx.invoke(setup)
        port = os.environ.setdefault("PORT", "5000")
        click.echo(
            f"\nCaseBridge is starting at http://127.0.0.1:{port}/  (log in as 'admin' with "
            "the password printed on first run, or make one with "
            "`.venv/bin/casebridge users create NAME --role admin`)\n"
        )
        bin_dir = str(Path(sys.executable).parent)
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
        honcho_main(["start", "-f", procfile, "-d", str(PROJECT_ROOT)])
    finally:
        stop(redis_process)
