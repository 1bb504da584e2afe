"""Projects and who may reach them."""

from __future__ import annotations

from sqlalchemy import select

from server import audit
from server.auth.models import Role, User
from server.extensions import db
from server.projects.models import Project, ProjectMember


class ProjectNotFound(Exception):
    pass


class Forbidden(Exception):
    """The user is known but may not do this (HTTP 403)."""


def default_project(name: str = "Default project") -> Project:
    """The first project, created when the database is new."""
    project = db.session.scalar(select(Project).order_by(Project.id).limit(1))
    if project is None:
        project = Project(name=name)
        db.session.add(project)
        db.session.flush()
    return project


def create_project(name: str, description: str | None = None) -> Project:
    project = Project(name=name, description=description)
    db.session.add(project)
    db.session.flush()
    return project


def add_member(project: Project, user: User) -> None:
    if db.session.get(ProjectMember, (project.id, user.id)) is None:
        db.session.add(ProjectMember(project_id=project.id, user_id=user.id))
        db.session.flush()


def visible_projects(user: User) -> list[Project]:
    query = select(Project).where(Project.archived.is_(False)).order_by(Project.id)
    if not user.is_admin:
        query = query.join(ProjectMember).where(ProjectMember.user_id == user.id)
    return list(db.session.scalars(query))


def is_member(user: User, project: Project) -> bool:
    return user.is_admin or db.session.get(ProjectMember, (project.id, user.id)) is not None


def project_for(user: User, project_id: int) -> Project:
    """Load a project the user may see; unknown and hidden look the same (404)."""
    project = db.session.get(Project, project_id)
    if project is None or not is_member(user, project):
        raise ProjectNotFound(project_id)
    return project


def require_form_manager(user: User, project: Project) -> None:
    if not (user.is_admin or (user.role == Role.DESIGNER and is_member(user, project))):
        raise Forbidden("Only administrators and form designers may change forms.")


def record_project_change(
    action: str, project: Project, user_id: int | None, address: str | None, **details
) -> None:
    """`project.create` or `project.key` (managed encryption turned on: the key's id, never
    the passphrase or its hint); the caller commits."""
    audit.record(
        action,
        user_id=user_id,
        object_type="project",
        object_id=project.id,
        address=address,
        details=details,
    )
