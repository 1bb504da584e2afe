"""Server-rendered pages for people: log in, list, upload and inspect forms."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from server.auth.operations import (
    AuthError,
    TooManyAttempts,
    authenticate,
    record_failed_login,
    record_login,
)
from server.extensions import db
from server.forms import operations as ops
from server.forms.models import FORM_STATES, Form
from server.forms.problems import FormProblem, FormRejected
from server.forms.xform import languages, parse_xml_safely, preview
from server.projects.operations import (
    is_member,
    project_for,
    require_form_manager,
    visible_projects,
)
from server.security import current_user, login_required

pages = Blueprint("pages", __name__)


@pages.get("/")
def index():
    return redirect(url_for("pages.forms_list" if current_user() else "pages.login"))


@pages.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        login_name = request.form.get("username", "")
        try:
            user = authenticate(login_name, request.form.get("password", ""), request.remote_addr)
        except AuthError as failure:
            record_failed_login(login_name, request.remote_addr, failure, via="page")
            db.session.commit()
            if isinstance(failure, TooManyAttempts):
                return render_template("login.html", error=str(failure)), 429
            error = str(failure)
        else:
            record_login(user, request.remote_addr, via="page")
            db.session.commit()
            session.clear()
            session["user_id"] = user.id
            session["generation"] = user.session_generation
            target = request.args.get("next", "")
            safe = target.startswith("/") and not target.startswith("//")
            return redirect(target if safe else url_for("pages.forms_list"))
    return render_template("login.html", error=error), 401 if error else 200


@pages.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("pages.login"))


@pages.get("/forms")
@login_required
def forms_list():
    projects = visible_projects(current_user())
    forms = {
        p.id: list(
            db.session.scalars(
                select(Form).where(Form.project_id == p.id).order_by(Form.xml_form_id)
            )
        )
        for p in projects
    }
    return render_template("forms_list.html", projects=projects, forms=forms)


def _uploads(field: str) -> list[ops.Upload]:
    return [
        ops.Upload(f.filename, f.read(), f.mimetype)
        for f in request.files.getlist(field)
        if f and f.filename
    ]


@pages.route("/projects/<int:project_id>/forms/upload", methods=["GET", "POST"])
@login_required
def upload_form(project_id: int):
    project = project_for(current_user(), project_id)
    require_form_manager(current_user(), project)
    problems, status = [], 200
    if request.method == "POST":
        form_files = _uploads("file")
        try:
            if not form_files:
                raise FormRejected([FormProblem("Choose an XLSForm or XForm file to upload.")])
            prepared = ops.prepare_form(form_files[0])
            result = ops.publish_form(
                project,
                prepared,
                user=current_user(),
                media=_uploads("media"),
                draft=bool(request.form.get("draft")),
            )
        except FormRejected as rejection:
            db.session.rollback()
            problems, status = rejection.problems, rejection.status
        except (ops.FormConflict, ops.AttachmentNotExpected) as conflict:
            db.session.rollback()
            problems, status = [FormProblem(str(conflict))], 409
        else:
            if result.changed and not result.form_def.is_draft:
                ops.record_published(
                    result.form, result.form_def, current_user().id, request.remote_addr
                )
            db.session.commit()
            for warning in prepared.warnings:
                flash(str(warning), "warning")
            flash(_published_message(result), "success")
            return redirect(
                url_for(
                    "pages.form_detail", project_id=project.id, xml_form_id=result.form.xml_form_id
                )
            )
    return render_template("upload.html", project=project, problems=problems), status


def _published_message(result: ops.PublishResult) -> str:
    version = result.form_def.version or "(no version)"
    if not result.changed:
        return f"Version {version} was already published; nothing changed."
    if result.form_def.is_draft:
        return f"Draft {version} saved. Preview it below, then publish."
    return f"Version {version} published."


def _detail_form(project_id: int, xml_form_id: str) -> Form:
    return ops.get_form(project_for(current_user(), project_id), xml_form_id)


@pages.get("/projects/<int:project_id>/forms/<xml_form_id>")
@login_required
def form_detail(project_id: int, xml_form_id: str):
    form = _detail_form(project_id, xml_form_id)
    shown = form.draft_def if request.args.get("show") == "draft" else None
    shown = shown or form.current_def or form.draft_def
    items = preview(parse_xml_safely(shown.xml.encode("utf-8"))) if shown else []
    langs = languages(items)
    lang = request.args.get("lang") if request.args.get("lang") in langs else None
    lang = lang or (langs[0] if langs else None)
    return render_template(
        "form_detail.html",
        form=form,
        shown=shown,
        items=items,
        langs=langs,
        lang=lang,
        states=FORM_STATES,
        can_manage=_can_manage(form),
    )


def _can_manage(form: Form) -> bool:
    user = current_user()
    return user.is_admin or (user.role == "designer" and is_member(user, form_project(form)))


def form_project(form: Form):
    return project_for(current_user(), form.project_id)


def _managed(project_id: int, xml_form_id: str) -> Form:
    form = _detail_form(project_id, xml_form_id)
    require_form_manager(current_user(), form_project(form))
    return form


def _back(form: Form, **args):
    return redirect(
        url_for(
            "pages.form_detail", project_id=form.project_id, xml_form_id=form.xml_form_id, **args
        )
    )


@pages.post("/projects/<int:project_id>/forms/<xml_form_id>/state")
@login_required
def change_state(project_id: int, xml_form_id: str):
    form = _managed(project_id, xml_form_id)
    ops.set_state(form, request.form.get("state", ""), current_user().id, request.remote_addr)
    db.session.commit()
    flash(f"The form is now {form.state}.", "success")
    return _back(form)


@pages.post("/projects/<int:project_id>/forms/<xml_form_id>/draft/publish")
@login_required
def publish_draft(project_id: int, xml_form_id: str):
    form = _managed(project_id, xml_form_id)
    try:
        form_def = ops.publish_draft(form)
    except ops.FormConflict as conflict:
        db.session.rollback()
        flash(str(conflict), "error")
        return _back(form, show="draft")
    ops.record_published(form, form_def, current_user().id, request.remote_addr)
    db.session.commit()
    flash(f"Version {form_def.version or '(no version)'} published.", "success")
    return _back(form)


@pages.post("/projects/<int:project_id>/forms/<xml_form_id>/media")
@login_required
def upload_media(project_id: int, xml_form_id: str):
    form = _managed(project_id, xml_form_id)
    target = form.draft_def if request.form.get("target") == "draft" else form.current_def
    if target is None:
        abort(404)
    try:
        names = [ops.attach_media(target, upload).name for upload in _uploads("media")]
    except (FormRejected, ops.AttachmentNotExpected, ops.FormConflict) as problem:
        db.session.rollback()
        flash(str(problem), "error")
    else:
        if names:
            ops.record_form_change(
                "form.media",
                form,
                current_user().id,
                request.remote_addr,
                files=names,
                draft=target.is_draft,
            )
        db.session.commit()
        flash("Media saved.", "success")
    return _back(form, show="draft" if target.is_draft else None)


@pages.get("/projects/<int:project_id>/forms/<xml_form_id>/defs/<int:def_id>/source")
@login_required
def download_source(project_id: int, xml_form_id: str, def_id: int):
    form = _detail_form(project_id, xml_form_id)
    form_def = next((d for d in form.defs if d.id == def_id), None)
    if form_def is None or form_def.source_blob is None:
        abort(404)
    return Response(
        form_def.source_blob.content,
        content_type=form_def.source_blob.content_type,
        headers={"Content-Disposition": f'attachment; filename="{form_def.source_filename}"'},
    )


from server.pages import appusers as _appusers  # noqa: E402,F401 - registers its routes
from server.pages import audit as _audit  # noqa: E402,F401 - registers its routes
from server.pages import cases as _cases  # noqa: E402,F401 - registers its routes
from server.pages import queue as _queue  # noqa: E402,F401 - registers its routes
from server.pages import review as _review  # noqa: E402,F401 - registers its routes
from server.pages import sync as _sync  # noqa: E402,F401 - registers its routes
from server.pages import transfers as _transfers  # noqa: E402,F401 - registers its routes
from server.pages import users as _users  # noqa: E402,F401 - registers its routes
