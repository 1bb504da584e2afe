"""Receiving submissions: store every byte durably, tell retries from conflicts, never lose.

No HTTP here: the OpenRosa view hands in the XML bytes, the posted files and who sent them;
it gets a Receipt or one of the exceptions below, each with a message an interviewer reads
on the phone.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import BinaryIO

from sqlalchemy import Insert, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from server import cache
from server.extensions import db
from server.forms.models import Form, FormDef, FormState
from server.forms.problems import FormRejected
from server.forms.xform import parse_xml_safely
from server.prepared import PreparedInsert
from server.storage import StoredFile, storage
from server.submissions.instance import (
    SAFE_NAME,
    BadSubmission,
    binary_paths,
    named_files,
    read_instance,
    with_known_prefixes,
)
from server.submissions.models import Submission, SubmissionAttachment, SubmissionState
from server.submissions.queueing import SubmissionKey, mark_queued

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
    #: The submission to wake the queue for once the caller has committed (None: no need).
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


#: libxml2's words for a prefix used without its xmlns declaration (`<orx:meta>`).
UNBOUND_PREFIX = re.compile(r"Namespace prefix \S+ (on \S+ )?is not defined")


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
    """Store one OpenRosa submission POST; the caller commits, then wakes the queue.

    A new submission costs one INSERT (two with attachments), already marked queued.
    """
    try:
        root = parse_xml_safely(xml, what="submission")
    except FormRejected as rejection:
        if not UNBOUND_PREFIX.search(rejection.problems[0].message):
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
    named = named_files(root, identity, form_def.binary_paths)
    for name in [f.name for f in files] + named:
        if not SAFE_NAME.match(name):
            raise BadSubmission(f"The attachment name '{name[:80]}' is not a plain file name.")
    xml_sha256 = hashlib.sha256(xml).hexdigest()

    root_instance_id = identity.instance_id
    if identity.deprecated_id:
        # An edit sent again must be answered as a retry before its original is looked at
        # (the first copy already made the original not current).
        existing = _existing(form.id, identity.instance_id)
        if existing is not None:
            return _received_again(existing, xml_sha256, files)
        root_instance_id = _supersede(form.id, identity.deprecated_id)

    saved = _save_files(files)  # before the INSERT: no write lock held during fsyncs
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
        "job_id": None,  # the next batch job claims it
        "device_id": submitter.device_id,
        "submitter_user_id": submitter.user_id,
        "submitter_app_user_id": submitter.app_user_id,
        "problems": [],
    }
    inserted = _INSERT_NEW_SUBMISSION.execute(db.session, row)
    if inserted is None:
        # This instanceID is stored already: a phone retrying, or the same submission
        # arriving twice at once (the other request committed first).
        existing = find_submission(form.id, identity.instance_id)
        return _received_again(existing, xml_sha256, files, saved)
    submission_id = inserted[0]
    unnamed = saved.keys() - set(named)
    rows = [_attachment_row(submission_id, name, True, saved.get(name)) for name in named] + [
        _attachment_row(submission_id, name, False, file)
        for name, file in saved.items()
        if name in unnamed
    ]
    _INSERT_ATTACHMENTS.executemany(db.session, rows)
    missing = [name for name in named if name not in saved]
    return Receipt(True, list(saved), missing, SubmissionKey(form.id, identity.instance_id))


def _received_again(
    existing: Submission,
    xml_sha256: str,
    files: list[IncomingFile],
    saved: dict[str, SavedFile] | None = None,
) -> Receipt:
    """The same instanceID again: a retry (new files are added) unless the XML differs."""
    if existing.xml_sha256 != xml_sha256:
        raise SubmissionConflict(
            "A different submission with the same instanceID was already received. "
            "It was not replaced."
        )
    stored = _store_files(existing, files, saved or {})
    key = mark_queued(existing) if existing.state == SubmissionState.RECEIVED else None
    return Receipt(False, stored, existing.missing_attachments, key)


def _supersede(form_id: int, deprecated_id: str) -> str:
    """An edit: its original stops being current; the root instanceID both share."""
    original = find_submission(form_id, deprecated_id)
    if original is None:
        raise OriginalNotFound(
            "The submission you edited is not on this server, so the edit cannot be saved."
        )
    if not original.current:
        raise SubmissionConflict(
            "The submission you edited was changed since; get the newest version and edit that one."
        )
    original.current = False
    db.session.flush()
    return original.root_instance_id


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
        stored = storage().save_stream(incoming.stream, content_type=incoming.content_type)
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
_EXISTING_ID = select(_SUBMISSIONS.c.id).where(
    _SUBMISSIONS.c.form_id == bindparam("form_id"),
    _SUBMISSIONS.c.instance_id == bindparam("instance_id"),
)


def _insert_new_submission(dialect_name: str) -> Insert:
    """INSERT that does nothing when the instanceID is there: a retry is not an error."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return (
        dialect.insert(_SUBMISSIONS)
        .on_conflict_do_nothing(index_elements=["form_id", "instance_id"])
        .returning(_SUBMISSIONS.c.id)
    )


_INSERT_NEW_SUBMISSION = PreparedInsert(
    _insert_new_submission,
    [
        "form_id",
        "form_def_id",
        "instance_id",
        "deprecated_id",
        "root_instance_id",
        "current",
        "xml",
        "xml_sha256",
        "xml_size",
        "encrypted",
        "state",
        "job_id",
        "device_id",
        "submitter_user_id",
        "submitter_app_user_id",
        "problems",
    ],
)
_INSERT_ATTACHMENTS = PreparedInsert(
    lambda _dialect_name: insert(SubmissionAttachment.__table__),
    [
        "submission_id",
        "name",
        "expected",
        "blob_key",
        "sha256",
        "size",
        "content_type",
        "received_at",
    ],
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


def _store_files(
    submission: Submission, files: list[IncomingFile], saved: dict[str, SavedFile]
) -> list[str]:
    """Add posted files to a stored submission: those it names, and unnamed extras.

    `saved`: files this request already stored (content-addressed: not stored twice)."""
    by_name = {a.name: a for a in submission.attachments}
    stored = []
    for incoming in files:
        attachment = by_name.get(incoming.name)
        if attachment is not None and attachment.blob_key is not None:
            continue  # already have it (a retry resending everything)
        if incoming.name in saved:
            file = saved[incoming.name].stored
        else:
            if incoming.stream.seekable():
                incoming.stream.seek(0)  # a retried receive reads the same part again
            file = storage().save_stream(incoming.stream, content_type=incoming.content_type)
        if attachment is None:
            attachment = SubmissionAttachment(name=incoming.name, expected=False)
            submission.attachments.append(attachment)
            by_name[incoming.name] = attachment
        attachment.blob_key = file.key
        attachment.sha256 = file.sha256
        attachment.size = file.size
        attachment.content_type = incoming.content_type
        attachment.received_at = _now()
        stored.append(incoming.name)
    return stored
