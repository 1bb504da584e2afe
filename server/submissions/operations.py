"""Receiving submissions: store every byte durably, tell retries from conflicts, never lose.

No HTTP here: the OpenRosa view hands in the XML bytes, the posted files and who sent them;
it gets a Receipt or one of the exceptions below, each with a message an interviewer reads
on the phone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from flask import current_app
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import bindparam, insert, select, update

from server import cache
from server.extensions import db, queue, redis_connection
from server.forms.models import Form, FormDef, FormState
from server.forms.problems import FormRejected
from server.forms.xform import parse_xml_safely
from server.storage import StoredFile, storage
from server.submissions.instance import (
    SAFE_NAME,
    BadSubmission,
    binary_paths,
    read_instance,
    with_known_prefixes,
)
from server.submissions.models import Submission, SubmissionAttachment, SubmissionState

log = logging.getLogger(__name__)


class SubmissionRefused(Exception):
    """Base of the refusals; `status` is the HTTP status, the message is for the phone."""

    status = 400


class FormUnknown(SubmissionRefused):
    status = 404


class FormVersionUnknown(SubmissionRefused):
    status = 409


class FormNotAccepting(SubmissionRefused):
    status = 409


class SubmissionConflict(SubmissionRefused):
    status = 409


class OriginalNotFound(SubmissionRefused):
    status = 404


@dataclass
class IncomingFile:
    name: str
    stream: BinaryIO
    content_type: str | None = None


@dataclass
class Submitter:
    user_id: int | None = None
    app_user_id: int | None = None
    device_id: str | None = None


@dataclass(frozen=True)
class FormRef:
    """A form as receiving needs it; plain values, so it can be kept between requests."""

    id: int
    xml_form_id: str
    state: str


@dataclass(frozen=True)
class PublishedVersion:
    id: int
    #: Element steps of the version's file questions (see instance.binary_paths).
    binary_paths: list[list[str]]


@dataclass
class Receipt:
    created: bool
    stored_files: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: The job to push once the caller has committed; None if one is already queued.
    queue_key: SubmissionKey | None = None

    @property
    def message(self) -> str:
        missing = self.missing
        if self.created:
            text = "Your submission was received. Thank you."
        elif self.stored_files:
            text = "This submission was already received; the new files were added."
        else:
            text = "This submission was already received; nothing more was needed."
        if missing:
            text += f" Still expected: {len(missing)} file(s); send them when you can."
        return text


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


_BINARY_PATHS: dict[tuple[int, str], list[list[str]]] = {}


def _binary_paths(form_def_id: int, xml_sha256: str) -> list[list[str]]:
    """The form version's file questions; read from its XML once per process."""
    key = (form_def_id, xml_sha256)
    if key not in _BINARY_PATHS:
        if len(_BINARY_PATHS) > 1000:
            _BINARY_PATHS.clear()
        xml = db.session.scalar(select(FormDef.xml).where(FormDef.id == form_def_id))
        _BINARY_PATHS[key] = binary_paths(xml)
    return _BINARY_PATHS[key]


def receive(
    xml: bytes,
    files: list[IncomingFile],
    *,
    find_form: Callable[[str], Form | FormRef | None],
    submitter: Submitter,
) -> Receipt:
    """Store one OpenRosa submission POST; the caller commits, then pushes `queue_key`.

    A new submission costs one INSERT (two with attachments), already marked queued.
    """
    try:
        root = parse_xml_safely(xml, what="submission")
    except FormRejected as rejection:
        if "unbound prefix" not in rejection.problems[0].message:
            raise BadSubmission(rejection.problems[0].message) from None
        try:  # e.g. <orx:meta> with no xmlns:orx: read it as the well-known namespace
            root = parse_xml_safely(with_known_prefixes(xml), what="submission")
        except FormRejected:
            raise BadSubmission(rejection.problems[0].message) from None
    identity = read_instance(root)
    form = find_form(identity.form_id)
    if form is None:
        raise FormUnknown(
            f"The form '{identity.form_id}' is not on this server, or you may not fill it. "
            "Update your blank forms and try again."
        )
    if form.state == FormState.CLOSED:
        raise FormNotAccepting(
            f"The form '{identity.form_id}' is closed and no longer accepts "
            "submissions. Ask your coordinator which form to use now."
        )
    form_def = published_version(form, identity.version)
    identity = read_instance(root, form_def.binary_paths)
    for name in [f.name for f in files] + identity.named_files:
        if not SAFE_NAME.match(name):
            raise BadSubmission(f"The attachment name '{name[:80]}' is not a plain file name.")
    xml_sha256 = hashlib.sha256(xml).hexdigest()

    existing = _existing(form.id, identity.instance_id)
    if existing is not None:
        if existing.xml_sha256 != xml_sha256:
            raise SubmissionConflict(
                "A different submission with the same instanceID was already received. "
                "It was not replaced."
            )
        stored = _store_files(existing, files)
        key = mark_queued(existing) if existing.state == SubmissionState.RECEIVED else None
        return Receipt(False, stored, existing.missing_attachments, key)

    root_instance_id = identity.instance_id
    if identity.deprecated_id:
        original = find_submission(form.id, identity.deprecated_id)
        if original is None:
            raise OriginalNotFound(
                "The submission you edited is not on this server, so the edit cannot be saved."
            )
        if not original.current:
            raise SubmissionConflict(
                "The submission you edited was changed since; get the newest version and "
                "edit that one."
            )
        original.current = False
        root_instance_id = original.root_instance_id

    saved = _save_files(files)  # before the INSERT: no write lock held during fsyncs
    key = SubmissionKey(form.id, identity.instance_id)
    row = {
        "form_id": form.id,
        "form_def_id": form_def.id,
        "instance_id": identity.instance_id,
        "deprecated_id": identity.deprecated_id,
        "root_instance_id": root_instance_id,
        "current": True,
        "xml": xml,
        "xml_sha256": xml_sha256,
        "xml_size": len(xml),
        "encrypted": identity.encrypted,
        "state": SubmissionState.QUEUED.value,
        "job_id": key.job_id,
        "device_id": submitter.device_id,
        "submitter_user_id": submitter.user_id,
        "submitter_app_user_id": submitter.app_user_id,
    }
    submission_id = db.session.execute(_INSERT_SUBMISSION, row).inserted_primary_key[0]
    named = set(identity.named_files)
    rows = [
        _attachment_row(submission_id, name, True, saved.get(name)) for name in identity.named_files
    ] + [
        _attachment_row(submission_id, name, False, file)
        for name, file in saved.items()
        if name not in named
    ]
    if rows:
        db.session.execute(_INSERT_ATTACHMENT, rows)
    missing = [name for name in identity.named_files if name not in saved]
    return Receipt(True, list(saved), missing, key)


@dataclass(frozen=True)
class SavedFile:
    stored: StoredFile
    content_type: str | None
    received_at: datetime


def _save_files(files: list[IncomingFile]) -> dict[str, SavedFile]:
    """Store every posted file durably, by name; the first of two same-named parts wins."""
    saved: dict[str, SavedFile] = {}
    for incoming in files:
        if incoming.name in saved:
            continue
        if incoming.stream.seekable():
            incoming.stream.seek(0)  # a retried receive reads the same part again
        stored = storage().save_stream(incoming.stream)
        saved[incoming.name] = SavedFile(stored, incoming.content_type, _now())
    return saved


def _attachment_row(submission_id: int, name: str, expected: bool, file: SavedFile | None) -> dict:
    return {
        "submission_id": submission_id,
        "name": name,
        "expected": expected,
        "blob_key": file.stored.key if file else None,
        "sha256": file.stored.sha256 if file else None,
        "size": file.stored.size if file else None,
        "content_type": file.content_type if file else None,
        "received_at": file.received_at if file else None,
    }


#: Statements built once: receiving runs them on every POST.
_SUBMISSIONS = Submission.__table__
_INSERT_SUBMISSION = insert(_SUBMISSIONS)
_INSERT_ATTACHMENT = insert(SubmissionAttachment.__table__)
_EXISTING_ID = select(_SUBMISSIONS.c.id).where(
    _SUBMISSIONS.c.form_id == bindparam("form_id"),
    _SUBMISSIONS.c.instance_id == bindparam("instance_id"),
)


def _existing(form_id: int, instance_id: str) -> Submission | None:
    """The stored submission, loaded only when there is one (a retry: rare)."""
    found = db.session.execute(
        _EXISTING_ID, {"form_id": form_id, "instance_id": instance_id}
    ).scalar()
    return db.session.get(Submission, found) if found is not None else None


def find_submission(form_id: int, instance_id: str) -> Submission | None:
    return db.session.scalar(
        select(Submission).where(
            Submission.form_id == form_id, Submission.instance_id == instance_id
        )
    )


def published_version(form: Form | FormRef, version: str) -> PublishedVersion:
    """A published version never changes: remembered between requests (see server.cache)."""
    found = cache.remembered(("version", form.id, version), lambda: _load_version(form, version))
    if found is not None:
        return found
    raise FormVersionUnknown(
        f"Version '{version}' of the form '{form.xml_form_id}' is not on this server "
        "(it may be a draft, or deleted). Update your blank forms, then fill it again."
    )


def _load_version(form: Form | FormRef, version: str) -> PublishedVersion | None:
    row = db.session.execute(
        select(FormDef.id, FormDef.xml_sha256).where(
            FormDef.form_id == form.id,
            FormDef.version == version,
            FormDef.published_at.is_not(None),
        )
    ).first()
    if row is None:
        return None
    return PublishedVersion(row.id, _binary_paths(row.id, row.xml_sha256))


def _store_files(submission: Submission, files: list[IncomingFile]) -> list[str]:
    """Add posted files to a stored submission: those it names, and unnamed extras."""
    by_name = {a.name: a for a in submission.attachments}
    stored = []
    for incoming in files:
        attachment = by_name.get(incoming.name)
        if attachment is not None and attachment.blob_key is not None:
            continue  # already have it (a retry resending everything)
        if incoming.stream.seekable():
            incoming.stream.seek(0)  # a retried receive reads the same part again
        saved = storage().save_stream(incoming.stream)
        if attachment is None:
            attachment = SubmissionAttachment(name=incoming.name, expected=False)
            submission.attachments.append(attachment)
            by_name[incoming.name] = attachment
        attachment.blob_key = saved.key
        attachment.sha256 = saved.sha256
        attachment.size = saved.size
        attachment.content_type = incoming.content_type
        attachment.received_at = _now()
        stored.append(incoming.name)
    return stored


# ---- the queue ------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmissionKey:
    """What identifies a submission without its row id: known before any INSERT."""

    form_id: int
    instance_id: str

    @property
    def job_id(self) -> str:
        digest = hashlib.sha256(f"{self.form_id}:{self.instance_id}".encode()).hexdigest()
        return f"submission-{digest[:32]}"  # no instanceID in Redis keys or logs


def key_of(submission: Submission) -> SubmissionKey:
    return SubmissionKey(submission.form_id, submission.instance_id)


def mark_queued(submission: Submission) -> SubmissionKey:
    """Name the job before the commit, so receiving costs one INSERT and one commit."""
    key = key_of(submission)
    submission.state = SubmissionState.QUEUED
    submission.job_id = key.job_id
    return key


def push(key: SubmissionKey) -> bool:
    """Put the job on the queue; False (and no harm) if Redis is down."""
    from server.submissions.jobs import process_submission

    try:
        intervals = current_app.config["JOB_RETRY_INTERVALS"]
        with redis_connection().pipeline() as pipe:  # one round trip instead of two
            queue("submissions").enqueue(
                process_submission,
                key.form_id,
                key.instance_id,
                job_id=key.job_id,
                # Not rq's default (the call with its arguments): no instanceID in the
                # worker's log lines, and no repr() to build on every POST.
                description=f"submission of form {key.form_id}",
                retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
                pipeline=pipe,
            )
            pipe.execute()
    except (RedisError, OSError):
        log.warning("a submission of form %s stays 'received': Redis unreachable", key.form_id)
        return False
    return True


def mark_received(key: SubmissionKey) -> None:
    """The queue was unreachable after the commit: say so, for the reconciler and admins."""
    db.session.execute(
        update(Submission)
        .where(Submission.form_id == key.form_id, Submission.instance_id == key.instance_id)
        .values(state=SubmissionState.RECEIVED, job_id=None)
    )


WAITING_STATES = (SubmissionState.RECEIVED, SubmissionState.QUEUED)


def enqueue(submission: Submission, from_states: tuple[str, ...] = WAITING_STATES) -> bool:
    """Enqueue an already-committed submission in one of `from_states` (the reconciler's
    path; key unlocking also re-queues submissions that waited for review).

    The row says 'queued' (committed) before the job exists, so a worker that finishes
    first is never overwritten by this commit; if the push fails it says 'received' again.
    """
    key = key_of(submission)
    claimed = db.session.execute(
        update(Submission)
        .where(
            Submission.id == submission.id,
            Submission.state.in_(from_states),
        )
        .values(state=SubmissionState.QUEUED, job_id=key.job_id)
    ).rowcount
    db.session.commit()
    if not claimed:
        return False  # finished meanwhile
    if not push(key):
        mark_received(key)
        db.session.commit()
        return False
    return True


def reconcile(limit: int = 1000) -> int:
    """Re-enqueue what the queue lost: 'received' rows, and 'queued' rows whose job is gone,
    failed without saying so, or was running in a worker that died (SIGKILL, power cut).

    Re-running is safe: a submission changes its case once (process_submission).
    """
    enqueued = 0
    waiting = db.session.scalars(
        select(Submission)
        .where(Submission.state.in_([SubmissionState.RECEIVED, SubmissionState.QUEUED]))
        .order_by(Submission.id)
        .limit(limit)
    ).all()
    for submission in waiting:
        if submission.state == SubmissionState.QUEUED and not _job_lost(submission.job_id):
            continue
        if enqueue(submission):
            enqueued += 1
    db.session.commit()
    return enqueued


def _job_lost(job_id: str | None) -> bool:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    from server.extensions import redis_connection

    if not job_id:
        return True
    try:
        job = Job.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        return True
    status = job.get_status(refresh=False)
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return False
    if status == JobStatus.STARTED:
        return not _worker_alive(job.worker_name)
    return True  # finished, failed, stopped or canceled while the row still says 'queued'


def _worker_alive(name: str | None) -> bool:
    """Is the worker running? RQ forgets a dead worker only minutes later; on this host we
    can ask the operating system about its process at once."""
    import os
    import socket

    from rq import Worker

    from server.extensions import redis_connection

    if not name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, redis_connection())
    if worker is None:
        return False
    if worker.hostname != socket.gethostname() or not worker.pid:
        return True  # another machine's worker: trust RQ's own expiry
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
