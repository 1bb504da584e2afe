"""Forms under /v1/projects/{id}/forms, shaped as ODK Central's API."""

from __future__ import annotations

from flask import Response, request

from server.api import api
from server.errors import NOT_FOUND, api_error
from server.extensions import csrf, db
from server.forms import operations as ops
from server.forms.models import Form, FormDef
from server.forms.problems import rejected
from server.openrosa.auth import phone_auth_required
from server.projects.operations import project_for, require_form_manager
from server.schemas import AttachmentSchema, FormSchema, FormView
from server.security import api_login_required, current_user

CONTENT_TYPE_SUFFIX = {
    "application/xml": ".xml",
    "text/xml": ".xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel": ".xls",
    "text/csv": ".csv",
}


def _not_found():
    return api_error(404.1, NOT_FOUND, 404)


def _truthy(name: str) -> bool:
    return request.args.get(name, "").lower() in ("true", "1", "yes")


def _uploads_from_request() -> tuple[ops.Upload | None, list[ops.Upload]]:
    """The form file and media files, from a raw body (as Central takes) or multipart."""
    if request.files:
        form_file = request.files.get("file")
        media = [
            ops.Upload(f.filename or "", f.read(), f.mimetype)
            for f in request.files.getlist("media")
        ]
        if form_file is None:
            return None, media
        return ops.Upload(form_file.filename or "form", form_file.read(), form_file.mimetype), media
    body = request.get_data(cache=False)
    if not body:
        return None, []
    mimetype = request.mimetype
    suffix = CONTENT_TYPE_SUFFIX.get(mimetype)
    if suffix is None:
        raise rejected(
            f"Unsupported content type '{mimetype or 'none'}': send an XForm (application/xml) "
            "or an XLSForm (.xlsx, .xls or text/csv)."
        )
    stem = request.headers.get("X-XlsForm-FormId-Fallback") or "form"
    return ops.Upload(stem + suffix, body, mimetype), []


def _form(project_id: int, xml_form_id: str) -> Form:
    return ops.get_form(project_for(current_user(), project_id), xml_form_id)


def _managed_form(project_id: int, xml_form_id: str) -> Form:
    project = project_for(current_user(), project_id)
    require_form_manager(current_user(), project)
    return ops.get_form(project, xml_form_id)


def _dump(form: Form, form_def: FormDef | None) -> dict:
    return FormSchema().dump(FormView(form, form_def))


def _refuse_warnings(prepared: ops.PreparedForm):
    """Central's rule: warnings stop the upload unless ?ignoreWarnings=true."""
    if prepared.warnings and not _truthy("ignoreWarnings"):
        return api_error(
            400.16,
            "The form has warnings; fix them or upload again with ?ignoreWarnings=true.",
            400,
            problems=[w.as_dict() for w in prepared.warnings],
        )
    return None


@api.get("/projects/<int:project_id>/forms")
@api_login_required
def list_forms(project_id: int):
    project = project_for(current_user(), project_id)
    forms = db.session.scalars(
        db.select(Form).where(Form.project_id == project.id).order_by(Form.xml_form_id)
    )
    return [_dump(f, f.current_def or f.draft_def) for f in forms]


@api.post("/projects/<int:project_id>/forms")
@csrf.exempt
@api_login_required
def create_form(project_id: int):
    project = project_for(current_user(), project_id)
    require_form_manager(current_user(), project)
    upload, media = _uploads_from_request()
    if upload is None:
        raise rejected("Send the form as the request body (or as the 'file' part).")
    prepared = ops.prepare_form(upload, force=_truthy("force"))
    if (refusal := _refuse_warnings(prepared)) is not None:
        return refusal
    publish = request.args.get("publish", "false").lower() == "true"
    result = ops.create_form(project, prepared, publish=publish, user=current_user(), media=media)
    if publish:
        ops.record_published(result.form, result.form_def, current_user().id, request.remote_addr)
    db.session.commit()
    return _dump(result.form, result.form_def)


@api.get("/projects/<int:project_id>/forms/<xml_form_id>")
@api_login_required
def get_form(project_id: int, xml_form_id: str):
    form = _form(project_id, xml_form_id)
    return _dump(form, form.current_def or form.draft_def)


@api.patch("/projects/<int:project_id>/forms/<xml_form_id>")
@csrf.exempt
@api_login_required
def update_form(project_id: int, xml_form_id: str):
    form = _managed_form(project_id, xml_form_id)
    body = request.get_json(silent=True) or {}
    if "state" in body:
        ops.set_state(form, str(body["state"]), current_user().id, request.remote_addr)
    db.session.commit()
    return _dump(form, form.current_def or form.draft_def)


def _xml_response(form_def: FormDef | None) -> Response:
    if form_def is None:
        return _not_found()
    response = Response(form_def.xml.encode("utf-8"), content_type="text/xml; charset=utf-8")
    response.set_etag(form_def.xml_md5)
    return response.make_conditional(request)


@api.get("/projects/<int:project_id>/forms/<xml_form_id>.xml")
@phone_auth_required
def form_xml(project_id: int, xml_form_id: str):
    return _xml_response(_form(project_id, xml_form_id).current_def)


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/draft.xml")
@phone_auth_required
def draft_xml(project_id: int, xml_form_id: str):
    return _xml_response(_form(project_id, xml_form_id).draft_def)


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/versions")
@api_login_required
def list_versions(project_id: int, xml_form_id: str):
    form = _form(project_id, xml_form_id)
    return [_dump(form, d) for d in form.published_defs]


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/versions/<version>")
@api_login_required
def get_version(project_id: int, xml_form_id: str, version: str):
    form = _form(project_id, xml_form_id)
    form_def = form.published_version(version)
    if form_def is None:
        return _not_found()
    return _dump(form, form_def)


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/versions/<version>.xml")
@phone_auth_required
def version_xml(project_id: int, xml_form_id: str, version: str):
    return _xml_response(_form(project_id, xml_form_id).published_version(version))


@api.post("/projects/<int:project_id>/forms/<xml_form_id>/draft")
@csrf.exempt
@api_login_required
def create_draft(project_id: int, xml_form_id: str):
    form = _managed_form(project_id, xml_form_id)
    upload, media = _uploads_from_request()
    if upload is None:  # Central: no body copies the published version into a draft
        current = form.current_def
        if current is None:
            raise rejected("This form has no published version to copy; send a form file.")
        upload = ops.Upload(current.source_filename or "form.xml", current.source_blob.content)
    prepared = ops.prepare_form(upload, force=_truthy("force"))
    if (refusal := _refuse_warnings(prepared)) is not None:
        return refusal
    ops.replace_draft(form, prepared, user=current_user(), media=media)
    db.session.commit()
    return {"success": True}


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/draft")
@api_login_required
def get_draft(project_id: int, xml_form_id: str):
    form = _form(project_id, xml_form_id)
    if form.draft_def is None:
        return _not_found()
    return _dump(form, form.draft_def)


@api.delete("/projects/<int:project_id>/forms/<xml_form_id>/draft")
@csrf.exempt
@api_login_required
def delete_draft(project_id: int, xml_form_id: str):
    form = _managed_form(project_id, xml_form_id)
    if form.draft_def is None:
        return _not_found()
    ops.discard_draft(form)
    db.session.commit()
    return {"success": True}


@api.post("/projects/<int:project_id>/forms/<xml_form_id>/draft/publish")
@csrf.exempt
@api_login_required
def publish_draft(project_id: int, xml_form_id: str):
    form = _managed_form(project_id, xml_form_id)
    form_def = ops.publish_draft(form, request.args.get("version"))
    ops.record_published(form, form_def, current_user().id, request.remote_addr)
    db.session.commit()
    return {"success": True}


def _attachments(form_def: FormDef | None):
    if form_def is None:
        return _not_found()
    return AttachmentSchema(many=True).dump(form_def.attachments)


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/attachments")
@api_login_required
def list_attachments(project_id: int, xml_form_id: str):
    return _attachments(_form(project_id, xml_form_id).current_def)


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/draft/attachments")
@api_login_required
def list_draft_attachments(project_id: int, xml_form_id: str):
    return _attachments(_form(project_id, xml_form_id).draft_def)


def _attachment_response(form_def: FormDef | None, name: str) -> Response:
    media = ops.media_file(form_def, name) if form_def else None
    if media is None:
        return _not_found()
    response = Response(media.content, content_type=media.content_type)
    response.set_etag(media.md5)
    return response.make_conditional(request)


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/attachments/<name>")
@phone_auth_required
def get_attachment(project_id: int, xml_form_id: str, name: str):
    return _attachment_response(_form(project_id, xml_form_id).current_def, name)


@api.get("/projects/<int:project_id>/forms/<xml_form_id>/draft/attachments/<name>")
@phone_auth_required
def get_draft_attachment(project_id: int, xml_form_id: str, name: str):
    return _attachment_response(_form(project_id, xml_form_id).draft_def, name)


@api.post("/projects/<int:project_id>/forms/<xml_form_id>/draft/attachments/<name>")
@csrf.exempt
@api_login_required
def upload_draft_attachment(project_id: int, xml_form_id: str, name: str):
    form = _managed_form(project_id, xml_form_id)
    if form.draft_def is None:
        return _not_found()
    attached = ops.attach_media(
        form.draft_def, ops.Upload(name, request.get_data(), request.mimetype)
    )
    ops.record_form_change(
        "form.media",
        form,
        current_user().id,
        request.remote_addr,
        files=[attached.name],
        draft=True,
    )
    db.session.commit()
    return {"success": True}
