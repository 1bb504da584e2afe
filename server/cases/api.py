"""Cases under /v1/cases: a list to find them, and one case in full."""

from __future__ import annotations

from flask import jsonify, request

from server import audit
from server.api import api
from server.audit.operations import record_refused_case
from server.cases import queries
from server.cases.schemas import CaseFiltersSchema, CaseSchema, CaseSummarySchema, PageSchema
from server.extensions import db
from server.security import api_login_required, current_user

cases_api = api  # imported by create_app so these routes are registered


@api.get("/cases")
@api_login_required
def list_cases():
    filters = CaseFiltersSchema().load(request.args)  # ValidationError: 400 (server.errors)
    page = PageSchema().load(request.args)
    rows, total = queries.list_cases(current_user(), filters, page)
    response = jsonify(CaseSummarySchema(many=True).dump(rows))
    audit.record(
        "case.list",
        user_id=current_user().id,
        address=request.remote_addr,
        details={**queries.filters_summary(filters), "via": "api", "total": total},
    )
    db.session.commit()
    response.headers["X-Total-Count"] = str(total)
    return response


@api.get("/cases/<uuid>")
@api_login_required
def get_case(uuid: str):
    try:
        case = queries.get_case(current_user(), uuid)
    except queries.CaseNotFound:
        record_refused_case(current_user().id, uuid, request.remote_addr, via="api")
        db.session.commit()
        raise  # 404 (server.errors)
    body = CaseSchema().dump(case)
    audit.record(
        "case.view",
        user_id=current_user().id,
        object_type="case",
        object_id=case.uuid,
        mission=case.owner_mission,
        address=request.remote_addr,
        details={"via": "api"},
    )
    db.session.commit()
    return body
