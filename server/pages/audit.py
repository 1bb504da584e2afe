"""The audit log page (admins): who saw or changed what, filtered, paged, exportable as CSV
or JSON.

Opening the page and exporting are audited themselves.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Response, render_template, request, stream_with_context
from marshmallow import ValidationError
from sqlalchemy import select

from server import audit
from server.audit.operations import ACTIONS, AuditFilters, events_csv, events_json, list_events
from server.audit.schemas import AuditFiltersSchema
from server.auth.models import User
from server.extensions import db
from server.pages import pages
from server.security import admin_required, current_user, login_required

PAGE_SIZE = 50
FILTER_NAMES = ("action", "user_id", "object_type", "object_id", "since", "until")


def _summary(filters: AuditFilters) -> dict:
    return {k: str(v) for k, v in asdict(filters).items() if v is not None}


@pages.get("/admin/audit")
@login_required
@admin_required
def audit_page():
    given = {name: request.args.get(name, "") for name in FILTER_NAMES}
    try:
        number = max(int(request.args.get("page", "1")), 1)
    except ValueError:
        number = 1
    errors, events, total = {}, [], 0
    try:
        filters = AuditFiltersSchema().load(given)
    except ValidationError as error:
        errors = error.messages
    else:
        events, total = list_events(filters, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        audit.record(
            "audit.view",
            user_id=current_user().id,
            address=request.remote_addr,
            details=_summary(filters),
        )
    users = dict(db.session.execute(select(User.id, User.name).order_by(User.name)).all())
    db.session.commit()
    return render_template(
        "audit.html",
        events=events,
        total=total,
        given=given,
        errors=errors,
        number=number,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        actions=ACTIONS,
        users=users,
    ), 400 if errors else 200


@pages.get("/admin/audit.csv")
@login_required
@admin_required
def audit_export():
    return _export("csv", events_csv, "text/csv")


@pages.get("/admin/audit.json")
@login_required
@admin_required
def audit_export_json():
    return _export("json", events_json, "application/json")


def _export(kind: str, content, mimetype: str) -> Response:
    """The whole filtered log as a file, streamed; the export is audited before it starts."""
    filters = AuditFiltersSchema().load(request.args)  # ValidationError: 400 (server.errors)
    audit.record(
        "audit.export",
        user_id=current_user().id,
        address=request.remote_addr,
        details={**_summary(filters), "format": kind},
    )
    db.session.commit()  # the export is on record before the first byte leaves
    response = Response(stream_with_context(content(filters)), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="audit-log.{kind}"'
    response.headers["Cache-Control"] = "no-store"
    return response
