"""App users under /v1/projects/{id}/app-users, shaped as ODK Central's."""

from __future__ import annotations

from flask import Response, request

from server.api import api
from server.appusers import operations as ops
from server.appusers.models import AppUser
from server.errors import api_error
from server.extensions import csrf, db
from server.forms.operations import get_form
from server.projects.operations import project_for, require_form_manager
from server.schemas import iso
from server.security import api_login_required, current_user

app_users_api = api  # imported by create_app so these routes are registered


def _dump(app_user: AppUser) -> dict:
    return {
        "id": app_user.id,
        "type": "field_key",
        "displayName": app_user.display_name,
        "token": ops.token_of(app_user),
        "projectId": app_user.project_id,
        "createdAt": iso(app_user.created_at),
        "updatedAt": None,
        "deletedAt": iso(app_user.revoked_at),
    }


def _managed_project(project_id: int):
    project = project_for(current_user(), project_id)
    require_form_manager(current_user(), project)
    return project


def _app_user(project, app_user_id: int) -> AppUser:
    app_user = db.session.get(AppUser, app_user_id)
    if app_user is None or app_user.project_id != project.id:
        raise ops.AppUserNotFound(app_user_id)
    return app_user


@api.get("/projects/<int:project_id>/app-users")
@api_login_required
def list_app_users(project_id: int):
    project = _managed_project(project_id)
    users = db.session.scalars(
        db.select(AppUser).where(AppUser.project_id == project.id).order_by(AppUser.id)
    )
    return [_dump(u) for u in users if u.revoked_at is None]


@api.post("/projects/<int:project_id>/app-users")
@csrf.exempt
@api_login_required
def create_app_user(project_id: int):
    project = _managed_project(project_id)
    name = (request.get_json(silent=True) or {}).get("displayName")
    if not isinstance(name, str) or not name.strip():
        return api_error(400.3, "An app user needs a displayName.", 400)
    app_user, _ = ops.create_app_user(project, name)
    ops.record_app_user_change("app_user.create", app_user, current_user().id, request.remote_addr)
    db.session.commit()
    return _dump(app_user)


@api.delete("/projects/<int:project_id>/app-users/<int:app_user_id>")
@csrf.exempt
@api_login_required
def revoke_app_user(project_id: int, app_user_id: int):
    project = _managed_project(project_id)
    app_user = _app_user(project, app_user_id)
    ops.revoke(app_user)
    ops.record_app_user_change("app_user.revoke", app_user, current_user().id, request.remote_addr)
    db.session.commit()
    return {"success": True}


@api.route(
    "/projects/<int:project_id>/forms/<xml_form_id>/assignments/app-user/<int:app_user_id>",
    methods=["POST", "DELETE"],
)
@csrf.exempt
@api_login_required
def assign_form(project_id: int, xml_form_id: str, app_user_id: int):
    project = _managed_project(project_id)
    app_user = _app_user(project, app_user_id)
    form = get_form(project, xml_form_id)
    if request.method == "POST":
        changed = {"granted": [form.id] if ops.grant_form(app_user, form) else [], "revoked": []}
    else:
        changed = {"granted": [], "revoked": [form.id] if ops.revoke_form(app_user, form) else []}
    ops.record_form_access(
        app_user, **changed, user_id=current_user().id, address=request.remote_addr
    )
    db.session.commit()
    return {"success": True}


@api.get("/projects/<int:project_id>/app-users/<int:app_user_id>/qr.<kind>")
@api_login_required
def app_user_qr(project_id: int, app_user_id: int, kind: str):
    if kind not in ("png", "svg"):
        return api_error(404.1, "Could not find the resource you were looking for.", 404)
    project = _managed_project(project_id)
    app_user = _app_user(project, app_user_id)
    settings = ops.collect_settings(app_user, project, request.host_url)
    # Whoever holds the image holds the phone's access: each showing is kept.
    ops.record_app_user_change("app_user.qr", app_user, current_user().id, request.remote_addr)
    db.session.commit()
    content_type = "image/png" if kind == "png" else "image/svg+xml"
    response = Response(ops.qr_image(settings, kind), content_type=content_type)
    response.headers["Cache-Control"] = "no-store"  # the image carries a credential
    return response
