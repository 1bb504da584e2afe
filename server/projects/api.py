from __future__ import annotations

from flask import request
from sqlalchemy.exc import IntegrityError

from server.api import api
from server.errors import NOT_FOUND, api_error
from server.extensions import csrf, db
from server.projects import keys
from server.projects.operations import (
    Forbidden,
    create_project,
    project_for,
    record_project_change,
    visible_projects,
)
from server.schemas import ProjectSchema, iso
from server.security import api_login_required, current_user


@api.get("/projects")
@api_login_required
def list_projects():
    return ProjectSchema(many=True).dump(visible_projects(current_user()))


@api.post("/projects")
@csrf.exempt
@api_login_required
def new_project():
    if not current_user().is_admin:
        raise Forbidden("Only administrators may create projects.")
    body = request.get_json(silent=True) or {}
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return api_error(400.3, "A project needs a name.", 400)
    project = create_project(name.strip(), body.get("description"))
    record_project_change("project.create", project, current_user().id, request.remote_addr)
    db.session.commit()
    return ProjectSchema().dump(project)


@api.get("/projects/<int:project_id>")
@api_login_required
def get_project(project_id: int):
    return ProjectSchema().dump(project_for(current_user(), project_id))


# ---- managed encryption (server.projects.keys) --------------------------------------------


def _admin_project(project_id: int):
    """Keys are for administrators only: 403 for anyone else, whatever they may see."""
    user = current_user()
    if not user.is_admin:
        raise Forbidden("Only administrators may manage a project's encryption key.")
    return project_for(user, project_id)


def _key_view(project, key) -> dict:
    return {
        "projectId": project.id,
        "keyId": key.id,
        "managed": True,
        "hint": key.hint,
        "public": key.public_key,
        "createdAt": iso(key.created_at),
        # Forms phones still fill unencrypted, until their next version is published.
        "unencryptedForms": [f.xml_form_id for f in keys.unencrypted_forms(project)],
    }


@api.post("/projects/<int:project_id>/key")
@csrf.exempt
@api_login_required
def new_project_key(project_id: int):
    """Central's "managed encryption": {"passphrase", "hint"}; the passphrase is not kept."""
    project = _admin_project(project_id)
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    try:
        key = keys.create_managed_key(
            project, body.get("passphrase"), body.get("hint"), user=current_user()
        )
    except keys.PassphraseRefused as error:
        return api_error(400.2, str(error), 400)
    except keys.KeyAlreadyActive as error:
        return api_error(409.4, str(error), 409)
    record_project_change(
        "project.key", project, current_user().id, request.remote_addr, key_id=key.id, via="api"
    )
    try:
        db.session.commit()
    except IntegrityError:  # another request made the project's key meanwhile
        db.session.rollback()
        return api_error(409.4, f"Project {project_id} already has managed encryption.", 409)
    return _key_view(project, key)


@api.get("/projects/<int:project_id>/key")
@api_login_required
def get_project_key(project_id: int):
    project = _admin_project(project_id)
    key = keys.active_key(project.id)
    if key is None:
        return api_error(404.1, NOT_FOUND, 404)
    return _key_view(project, key)
