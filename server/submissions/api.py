"""Reading submissions back under /v1, as ODK Central's API does."""

from __future__ import annotations

from flask import Response, request

from server.api import api
from server.extensions import db
from server.forms.models import Form
from server.schemas import iso
from server.security import api_login_required, current_user
from server.storage import storage
from server.submissions import reading
from server.submissions.models import Submission


def _submission(form: Form, instance_id: str) -> Submission:
    try:
        return reading.get_readable(form, instance_id)
    except reading.SubmissionNotFound:
        reading.record_refused(current_user(), form, request.remote_addr)
        db.session.commit()
        raise  # 404 (server.errors)


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
    form = reading.readable_form(current_user(), project_id, xml_form_id)
    limit = min(request.args.get("limit", 250, type=int), 1000)
    offset = request.args.get("offset", 0, type=int)
    return [_dump(s) for s in reading.list_readable(form, limit=limit, offset=offset)]


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/submissions/<instance_id>.xml")
@api_login_required
def submission_xml(project_id: int, xml_form_id: str, instance_id: str):
    form = reading.readable_form(current_user(), project_id, xml_form_id)
    submission = _submission(form, instance_id)
    reading.record_read(current_user(), submission, request.remote_addr)
    db.session.commit()
    return Response(submission.xml, content_type="application/xml")


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/submissions/<instance_id>")
@api_login_required
def get_submission(project_id: int, xml_form_id: str, instance_id: str):
    form = reading.readable_form(current_user(), project_id, xml_form_id)
    return _dump(_submission(form, instance_id))


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/submissions/<instance_id>/attachments")
@api_login_required
def submission_attachments(project_id: int, xml_form_id: str, instance_id: str):
    form = reading.readable_form(current_user(), project_id, xml_form_id)
    submission = _submission(form, instance_id)
    return [{"name": a.name, "exists": a.blob_key is not None} for a in submission.attachments]


@api.get(
    "/projects/<int:project_id>/forms/<xml_form_id>/submissions/<instance_id>/attachments/<name>"
)
@api_login_required
def submission_attachment(project_id: int, xml_form_id: str, instance_id: str, name: str):
    form = reading.readable_form(current_user(), project_id, xml_form_id)
    submission = _submission(form, instance_id)
    attachment = reading.find_attachment(submission, name)  # SubmissionNotFound: 404
    reading.record_read(current_user(), submission, request.remote_addr, attachment)
    db.session.commit()
    return Response(
        storage().read_bytes(attachment.blob_key),
        content_type=attachment.content_type or "application/octet-stream",
    )
