"""Reading submissions back (the /v1 API): who may read which, and the trail it leaves.

A submission is the raw record of a person: the same rules as for cases apply
(`server.cases.queries`). Collectors read nothing back; others read the submissions of
projects they are members of (admins: every project); a submission whose case this mission
may no longer see (transferred away, sharing withdrawn) is out of reach, for admins too; out
of reach looks exactly like absent. Reading one's XML or an attachment is audited.
"""

from __future__ import annotations

from sqlalchemy import or_, select

from server import audit
from server.auth.models import User
from server.cases.models import Case
from server.cases.queries import in_mission_scope, own_mission, require_reader
from server.extensions import db
from server.forms.models import Form
from server.forms.operations import get_form
from server.projects.operations import project_for
from server.submissions.models import Submission, SubmissionAttachment


class SubmissionNotFound(Exception):
    """No such submission, or one the user may not see (HTTP 404 either way)."""


def readable_form(user: User, project_id: int, xml_form_id: str) -> Form:
    """The form whose submissions `user` wants: Forbidden for collectors (whatever the
    project), 404 for a project they are not a member of."""
    require_reader(user)
    return get_form(project_for(user, project_id), xml_form_id)


def _in_scope():
    """Not yet a case (received here), or a case within this mission's scope."""
    visible_cases = select(Case.id).where(in_mission_scope(own_mission()))
    return or_(Submission.case_id.is_(None), Submission.case_id.in_(visible_cases))


def list_readable(form: Form, *, limit: int, offset: int) -> list[Submission]:
    """The current submissions of `form` within the mission's scope, oldest first."""
    return list(
        db.session.scalars(
            select(Submission)
            .where(Submission.form_id == form.id, Submission.current, _in_scope())
            .order_by(Submission.id)
            .limit(limit)
            .offset(offset)
        )
    )


def get_readable(form: Form, instance_id: str) -> Submission:
    submission = db.session.scalar(
        select(Submission).where(
            Submission.form_id == form.id, Submission.instance_id == instance_id, _in_scope()
        )
    )
    if submission is None:
        raise SubmissionNotFound(instance_id)
    return submission


def find_attachment(submission: Submission, name: str) -> SubmissionAttachment:
    attachment = next((a for a in submission.attachments if a.name == name), None)
    if attachment is None or attachment.blob_key is None:
        raise SubmissionNotFound(name)
    return attachment


def record_read(
    user: User,
    submission: Submission,
    address: str | None,
    attachment: SubmissionAttachment | None = None,
) -> None:
    """`submission.view` (its XML) or `submission.attachment`: ids only, never the content
    nor the attachment's file name (a name can be a person's)."""
    audit.record(
        "submission.attachment" if attachment is not None else "submission.view",
        user_id=user.id,
        object_type="submission",
        object_id=submission.id,
        address=address,
        details={
            "form_id": submission.form_id,
            "case_id": submission.case_id,
            "via": "api",
            **({"attachment_id": attachment.id} if attachment is not None else {}),
        },
    )


def record_refused(user: User, form: Form, address: str | None) -> None:
    """Asked for a submission that is absent or out of scope: kept, like `case.refused`. The
    asked instance id is not kept (it is free text from the caller)."""
    audit.record(
        "submission.refused",
        user_id=user.id,
        object_type="form",
        object_id=form.id,
        address=address,
        details={"via": "api"},
    )
