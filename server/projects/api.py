from __future__ import annotations

from flask import request

from server.api import api
from server.errors import api_error
from server.extensions import csrf, db
from server.projects.operations import Forbidden, create_project, project_for, visible_projects
from server.schemas import ProjectSchema
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
    db.session.commit()
    return ProjectSchema().dump(project)


@api.get("/projects/<int:project_id>")
@api_login_required
def get_project(project_id: int):
    return ProjectSchema().dump(project_for(current_user(), project_id))
