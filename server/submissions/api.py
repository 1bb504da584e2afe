"""Reading submissions back under /v1, as ODK Central's API does."""

from __future__ import annotations

from flask import Response, abort, request
from sqlalchemy import select

from server.api import api
from server.extensions import db
from server.forms.operations import get_form
from server.projects.operations import Forbidden, project_for
from server.schemas import iso
from server.security import api_login_required, current_user
from server.storage import storage
from server.submissions.models import Submission
from server.submissions.operations import find_submission

READER_ROLES = ("admin", "designer", "viewer")  # collectors send, they do not read back


def _form(project_id: int, xml_form_id: str):
    user = current_user()
    project = project_for(user, project_id)
    if user.role not in READER_ROLES:
        raise Forbidden("Collectors cannot read submissions back.")
    return get_form(project, xml_form_id)


def _submission(form, instance_id: str) -> Submission:
    submission = find_submission(form.id, instance_id)
    if submission is None:
        abort(404)
    return submission


def _dump(s: Submission) -> dict:
    return {
        "instanceId": s.instance_id,
        "submitterId": s.submitter_user_id or s.submitter_app_user_id,
        "deviceId": s.device_id,
        "createdAt": iso(s.created_at),
        "updatedAt": iso(s.updated_at),
        "reviewState": None,
        "currentVersion": {"instanceId": s.instance_id, "current": s.current},
        "state": s.state,
        "encrypted": s.encrypted,
        "missingAttachments": s.missing_attachments,
        # What normalization could not apply (field, path, message), and a job's error.
        "problems": s.problems,
        "error": s.problem,
        "caseId": s.case_id,
    }


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/submissions")
@api_login_required
def list_submissions(project_id: int, xml_form_id: str):
    form = _form(project_id, xml_form_id)
    limit = min(request.args.get("limit", 250, type=int), 1000)
    offset = request.args.get("offset", 0, type=int)
    rows = db.session.scalars(
        select(Submission)
        .where(Submission.form_id == form.id, Submission.current)
        .order_by(Submission.id)
        .limit(limit)
        .offset(offset)
    )
    return [_dump(s) for s in rows]


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/submissions/<instance_id>.xml")
@api_login_required
def submission_xml(project_id: int, xml_form_id: str, instance_id: str):
    submission = _submission(_form(project_id, xml_form_id), instance_id)
    return Response(submission.xml, content_type="application/xml")


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/submissions/<instance_id>")
@api_login_required
def get_submission(project_id: int, xml_form_id: str, instance_id: str):
    return _dump(_submission(_form(project_id, xml_form_id), instance_id))


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/submissions/<instance_id>/attachments")
@api_login_required
def submission_attachments(project_id: int, xml_form_id: str, instance_id: str):
    submission = _submission(_form(project_id, xml_form_id), instance_id)
    return [{"name": a.name, "exists": a.blob_key is not None} for a in submission.attachments]


@api.get(
    "/projects/<int:project_id>/forms/<xml_form_id>/submissions/<instance_id>/attachments/<name>"
)
@api_login_required
def submission_attachment(project_id: int, xml_form_id: str, instance_id: str, name: str):
    submission = _submission(_form(project_id, xml_form_id), instance_id)
    attachment = next((a for a in submission.attachments if a.name == name), None)
    if attachment is None or attachment.blob_key is None:
        abort(404)
    return Response(
        storage().read_bytes(attachment.blob_key),
        content_type=attachment.content_type or "application/octet-stream",
    )
