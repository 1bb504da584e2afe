"""Users & roles (admins): list users, create one, change its role, projects and state,
reset its password. Generated passwords are rendered once, in the answer to the POST
that made them: never flashed (the session cookie is signed, not encrypted) nor stored.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from server.auth import operations as ops
from server.auth.models import ROLE_VALUES, User
from server.extensions import db
from server.pages import pages
from server.projects.models import Project
from server.security import admin_required, current_user, login_required


def _user(user_id: int) -> User:
    try:
        return ops.get_user(user_id)
    except ops.UserMissing:
        abort(404)


def _projects() -> list[Project]:
    return list(db.session.scalars(select(Project).order_by(Project.id)))


def _render_users(error: str | None = None, status: int = 200):
    """The list and the create form; after a refused create, the form as it was typed."""
    projects = _projects()
    if error:
        given = {k: request.form.get(k, "") for k in ("name", "role", "email")}
        chosen = set(request.form.getlist("project_id", type=int))
    else:
        given = {"role": "collector"}
        chosen = {projects[0].id} if len(projects) == 1 else set()
    return render_template(
        "users.html",
        users=ops.list_users(),
        projects=projects,
        roles=ROLE_VALUES,
        given=given,
        chosen=chosen,
        error=error,
    ), status


def _render_user(user: User, new_password: str | None = None):
    [summary] = ops.list_users(user.id)
    return render_template(
        "user.html",
        user=summary,
        projects=_projects(),
        roles=ROLE_VALUES,
        mission=current_app.config["MISSION_CODE"],
        new_password=new_password,
    )


@pages.get("/admin/users")
@login_required
@admin_required
def users_page():
    return _render_users()


@pages.post("/admin/users")
@login_required
@admin_required
def create_user():
    try:
        user, password = ops.create_account(
            request.form.get("name", ""),
            request.form.get("role", ""),
            email=request.form.get("email"),
            project_ids=request.form.getlist("project_id", type=int),
            by_user_id=current_user().id,
            address=request.remote_addr,
        )
    except (ops.InvalidAccount, ops.UserExists) as problem:
        db.session.rollback()
        return _render_users(str(problem), 400)
    db.session.commit()
    flash(f"User '{user.name}' created as {user.role}.", "success")
    return _render_user(user, new_password=password)


@pages.get("/admin/users/<int:user_id>")
@login_required
@admin_required
def user_page(user_id: int):
    return _render_user(_user(user_id))


def _saved(user: User, change, message: str):
    """Run one change, commit it and say so; a refusal is flashed and nothing is kept."""
    try:
        change()
    except (ops.InvalidAccount, ops.LastAdmin) as refusal:
        db.session.rollback()
        flash(str(refusal), "error")
    else:
        db.session.commit()
        flash(message, "success")
    return redirect(url_for("pages.user_page", user_id=user.id))


@pages.post("/admin/users/<int:user_id>/role")
@login_required
@admin_required
def change_user_role(user_id: int):
    user, role = _user(user_id), request.form.get("role", "")
    return _saved(
        user,
        lambda: ops.change_role(
            user, role, by_user_id=current_user().id, address=request.remote_addr
        ),
        f"'{user.name}' is now {role}.",
    )


@pages.post("/admin/users/<int:user_id>/projects")
@login_required
@admin_required
def change_user_projects(user_id: int):
    user, ids = _user(user_id), request.form.getlist("project_id", type=int)
    return _saved(
        user,
        lambda: ops.set_projects(
            user, ids, by_user_id=current_user().id, address=request.remote_addr
        ),
        "Projects saved.",
    )


@pages.post("/admin/users/<int:user_id>/active")
@login_required
@admin_required
def change_user_active(user_id: int):
    user, wanted = _user(user_id), request.form.get("active")
    if wanted not in ("0", "1"):
        abort(400)
    active = wanted == "1"
    return _saved(
        user,
        lambda: ops.set_active(
            user, active, by_user_id=current_user().id, address=request.remote_addr
        ),
        f"'{user.name}' was reactivated."
        if active
        else f"'{user.name}' was deactivated: they can no longer log in.",
    )


@pages.post("/admin/users/<int:user_id>/password")
@login_required
@admin_required
def reset_user_password(user_id: int):
    user = _user(user_id)
    password = ops.reset_password(user, by_user_id=current_user().id, address=request.remote_addr)
    db.session.commit()
    flash(f"The password of '{user.name}' was reset; the old one no longer works.", "success")
    return _render_user(user, new_password=password)
