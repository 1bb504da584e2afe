"""A case's timeline: each change (CaseVersion) and each submission behind it, oldest first.

An entry names the fields a change touched; the values go only to the case page itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select

from server.appusers.models import AppUser
from server.auth.models import User
from server.cases.display import field_label, show
from server.cases.models import Case, CaseVersion
from server.extensions import db
from server.forms.models import Form
from server.submissions.models import Submission


@dataclass(frozen=True)
class Changed:
    name: str
    label: str
    value: str  #: as shown; for the case page only


@dataclass(frozen=True)
class SubmissionRef:
    id: int
    instance_id: str
    xml_form_id: str
    state: str


@dataclass
class Entry:
    at: dt.datetime
    kind: str  #: "created", "changed", or "submission" (a submission that changed nothing)
    version: int | None = None
    who: str | None = None
    submission: SubmissionRef | None = None
    fields: list[Changed] = field(default_factory=list)
    #: Other records the change added or changed: [(dataset, how many)].
    records: list[tuple[str, int]] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    #: A transfer or referral this version records (sync.transfers), in words.
    note: str | None = None


def case_timeline(case: Case) -> list[Entry]:
    """Every change and submission of `case`, oldest first."""
    submissions = {
        s.id: s
        for s in db.session.scalars(
            select(Submission).where(Submission.case_id == case.id).order_by(Submission.id)
        )
    }
    missing = {v.submission_id for v in case.versions} - set(submissions) - {None}
    if missing:
        submissions.update(
            {
                s.id: s
                for s in db.session.scalars(select(Submission).where(Submission.id.in_(missing)))
            }
        )
    forms = _form_ids({s.form_id for s in submissions.values()})
    entries = [_change(v, submissions, forms) for v in case.versions]
    changed_by = {v.submission_id for v in case.versions}
    entries += [
        Entry(at=s.created_at, kind="submission", submission=_ref(s, forms), who=_who(s))
        for s in submissions.values()
        if s.id not in changed_by
    ]
    return sorted(entries, key=lambda e: (e.at, e.version or 0))


def _change(version: CaseVersion, submissions: dict, forms: dict) -> Entry:
    changes = version.changes or {}
    submission = submissions.get(version.submission_id)
    records: dict[str, int] = {}
    for record in changes.get("records", []):
        records[record.get("dataset", "?")] = records.get(record.get("dataset", "?"), 0) + 1
    return Entry(
        at=version.created_at,
        kind="created" if changes.get("create") else "changed",
        version=version.version,
        who=_who(version),
        submission=_ref(submission, forms) if submission is not None else None,
        fields=[
            Changed(name, field_label(name), show(name, value))
            for name, value in changes.get("fields", {}).items()
        ],
        records=sorted(records.items()),
        conflicts=list(version.conflicts or []),
        note=_transfer_note(changes),
    )


def _transfer_note(changes: dict) -> str | None:
    owner, referral = changes.get("owner_mission"), changes.get("referral")
    if isinstance(owner, dict):
        return f"Transferred: owner {owner.get('from')} → {owner.get('to')}"
    if isinstance(referral, dict):
        ended = " ended" if referral.get("ended") else ""
        return f"Referral to {referral.get('to')}{ended}"
    return None


def _who(row: CaseVersion | Submission) -> str | None:
    if row.submitter_user_id is not None:
        user = db.session.get(User, row.submitter_user_id)
        return user.name if user else f"user {row.submitter_user_id}"
    if row.submitter_app_user_id is not None:
        app_user = db.session.get(AppUser, row.submitter_app_user_id)
        return app_user.display_name if app_user else f"app user {row.submitter_app_user_id}"
    return None


def _form_ids(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(db.session.execute(select(Form.id, Form.xml_form_id).where(Form.id.in_(ids))).all())


def _ref(submission: Submission, forms: dict[int, str]) -> SubmissionRef:
    return SubmissionRef(
        submission.id,
        submission.instance_id,
        forms.get(submission.form_id, "?"),
        submission.state,
    )
