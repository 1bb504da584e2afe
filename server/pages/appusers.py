"""Pages for app users: create one, choose its forms, show its QR code, revoke it."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from server.appusers import operations as ops
from server.appusers.models import AppUser
from server.extensions import db
from server.forms.models import Form
from server.pages import pages
from server.projects.operations import project_for, require_form_manager
from server.security import current_user, login_required


def _project(project_id: int):
    project = project_for(current_user(), project_id)
    require_form_manager(current_user(), project)
    return project


def _app_user(project, app_user_id: int) -> AppUser:
    app_user = db.session.get(AppUser, app_user_id)
    if app_user is None or app_user.project_id != project.id or not app_user.active:
        abort(404)
    return app_user


@pages.route("/projects/<int:project_id>/app-users", methods=["GET", "POST"])
@login_required
def app_users(project_id: int):
    project = _project(project_id)
    if request.method == "POST":
        app_user, _ = ops.create_app_user(project, request.form.get("display_name", ""))
        ops.record_app_user_change(
            "app_user.create", app_user, current_user().id, request.remote_addr
        )
        db.session.commit()
        flash(
            f"App user '{app_user.display_name}' created. Choose its forms, then scan.", "success"
        )
        return redirect(
            url_for("pages.app_user_detail", project_id=project.id, app_user_id=app_user.id)
        )
    users = db.session.scalars(
        select(AppUser).where(AppUser.project_id == project.id, AppUser.revoked_at.is_(None))
    ).all()
    return render_template("app_users.html", project=project, app_users=users)


@pages.route("/projects/<int:project_id>/app-users/<int:app_user_id>", methods=["GET", "POST"])
@login_required
def app_user_detail(project_id: int, app_user_id: int):
    project = _project(project_id)
    app_user = _app_user(project, app_user_id)
    forms = db.session.scalars(
        select(Form).where(Form.project_id == project.id).order_by(Form.xml_form_id)
    ).all()
    if request.method == "POST":
        chosen = set(request.form.getlist("form_id", type=int))
        granted = [f.id for f in forms if f.id in chosen and ops.grant_form(app_user, f)]
        revoked = [f.id for f in forms if f.id not in chosen and ops.revoke_form(app_user, f)]
        ops.record_form_access(app_user, granted, revoked, current_user().id, request.remote_addr)
        db.session.commit()
        flash("Forms saved. The phone sees them at its next form list refresh.", "success")
        return redirect(request.path)
    return render_template(
        "app_user_detail.html",
        project=project,
        app_user=app_user,
        forms=forms,
        granted=ops.allowed_form_ids(app_user),
    )


@pages.post("/projects/<int:project_id>/app-users/<int:app_user_id>/revoke")
@login_required
def revoke_app_user(project_id: int, app_user_id: int):
    project = _project(project_id)
    app_user = _app_user(project, app_user_id)
    ops.revoke(app_user)
    ops.record_app_user_change("app_user.revoke", app_user, current_user().id, request.remote_addr)
    db.session.commit()
    flash(
        f"'{app_user.display_name}' was revoked: that phone can no longer send or fetch.", "success"
    )
    return redirect(url_for("pages.app_users", project_id=project.id))
