"""`casebridge keys ...`: a project's managed key, and unlocking it for the worker."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from server.extensions import db
from server.projects.keys import (
    KeyAlreadyActive,
    PassphraseRefused,
    active_key,
    create_managed_key,
    unencrypted_forms,
    unlock,
)
from server.projects.models import Project
from server.projects.operations import record_project_change
from server.submissions.decryption import (
    NotDecrypted,
    key_problem,
    requeue_waiting,
    store_passphrase,
    waiting_submissions,
)
from server.submissions.encryption import WrongPassphrase


def _project(project_id: int) -> Project:
    project = db.session.get(Project, project_id)
    if project is None:
        raise click.ClickException(f"No project with id {project_id}.")
    return project


@click.group()
def keys() -> None:
    """Managed encryption: a project's key, and unlocking it for the worker."""


def _passphrase_from_stdin() -> str:
    """From a pipe as is; typed at a terminal, without echo."""
    if sys.stdin.isatty():
        return click.prompt("Passphrase", hide_input=True, err=True)
    return sys.stdin.readline().rstrip("\r\n")


@keys.command("create")
@click.option("--project", "project_id", type=int, required=True, help="Project id.")
@click.option("--hint", default=None, help="A reminder of the passphrase (shown to admins).")
@with_appcontext
def create_key_command(project_id: int, hint: str | None) -> None:
    """Turn on managed encryption; the passphrase is read from standard input."""
    project = _project(project_id)
    try:
        key = create_managed_key(project, _passphrase_from_stdin(), hint)
    except (PassphraseRefused, KeyAlreadyActive) as error:
        raise click.ClickException(str(error)) from None
    record_project_change("project.key", project, None, None, key_id=key.id, via="cli")
    db.session.commit()
    click.echo(f"Project {project.id}: managed encryption is on (key {key.id}).")
    _echo_unencrypted(project)


def _echo_unencrypted(project: Project) -> None:
    waiting = [f.xml_form_id for f in unencrypted_forms(project)]
    if waiting:
        click.echo(
            "Phones send these unencrypted until a new version is published: " + ", ".join(waiting)
        )


@keys.command("unlock")
@click.option("--project", "project_id", type=int, required=True, help="Project id.")
@with_appcontext
def unlock_key_command(project_id: int) -> None:
    """Check the passphrase (standard input) and give it to the worker.

    It is added to the file CASEBRIDGE_KEY_PASSPHRASES_FILE names (mode 0600; keep it out of
    the instance folder and its backups), then submissions that waited for it are queued.
    """
    path = current_app.config.get("KEY_PASSPHRASES_FILE")
    if not path:
        raise click.ClickException(
            "Set CASEBRIDGE_KEY_PASSPHRASES_FILE (for this command and the worker) to a file "
            "only the service user can read, outside the instance folder."
        )
    project = _project(project_id)
    key = active_key(project.id)
    if key is None:
        raise click.ClickException(f"Project {project.id} has no managed key.")
    passphrase = _passphrase_from_stdin()
    try:
        unlock(key, passphrase)
        store_passphrase(path, project.id, passphrase)
    except WrongPassphrase:
        hint = f" (hint: {key.hint})" if key.hint else ""
        raise click.ClickException(f"That passphrase does not unlock the key{hint}.") from None
    except NotDecrypted as error:
        raise click.ClickException(error.message) from None
    if Path(path).resolve().is_relative_to(Path(current_app.instance_path).resolve()):
        click.echo(f"warning: {path} is in the instance folder; backups would hold it.", err=True)
    queued = requeue_waiting(project.id)
    db.session.commit()
    click.echo(f"Project {project.id}: passphrase stored in {path}; queued {queued} submission(s).")


@keys.command("process")
@click.option("--project", "project_id", type=int, required=True, help="Project id.")
@with_appcontext
def process_keys_command(project_id: int) -> None:
    """Queue again the encrypted submissions that could not be opened yet."""
    project = _project(project_id)
    queued = requeue_waiting(project.id)
    db.session.commit()
    click.echo(f"Queued {queued} submission(s).")


@keys.command("status")
@click.option("--project", "project_id", type=int, default=None, help="One project only.")
@with_appcontext
def key_status_command(project_id: int | None) -> None:
    """Per project: its key, whether this configuration decrypts, what still waits."""
    projects = (
        [_project(project_id)]
        if project_id is not None
        else db.session.scalars(select(Project).order_by(Project.id))
    )
    for project in projects:
        key = active_key(project.id)
        if key is None:
            click.echo(f"{project.id}\t{project.name}: no managed key")
            continue
        problem = key_problem(project.id, key.public_key)
        click.echo(
            f"{project.id}\t{project.name}: key {key.id}"
            + (f" (hint: {key.hint})" if key.hint else "")
            + ("; unlocked for the worker" if problem is None else f"; {problem}")
            + f"; {len(waiting_submissions(project.id))} submission(s) waiting"
        )
        _echo_unencrypted(project)
