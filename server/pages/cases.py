"""Case pages (read-only): the list with its filters, and one case with its timeline.

Who may read is decided in cases.queries (roles, projects, mission scope); every list and
every case opened is written to the audit trail with the response.
"""

from __future__ import annotations

from flask import render_template, request
from marshmallow import ValidationError

from server import audit
from server.audit.operations import record_refused_case
from server.cases import display, queries
from server.cases.codes import country_choices
from server.cases.fields import Record
from server.cases.history import case_timeline
from server.cases.htcds_fields import FIELDS as HTCDS
from server.cases.schemas import CaseFiltersSchema
from server.extensions import db
from server.pages import pages
from server.pages.transfers import transfer_panel
from server.security import current_user, login_required

PAGE_SIZE = 25
#: The filters the list page offers (the API takes a few more).
FILTER_NAMES = ("status", "gender", "age_band", "citizenship", "exploitation", "mission", "q")


@pages.app_context_processor
def _reads_cases() -> dict:
    """For the navigation: whose role may open the case pages."""
    return {"reads_cases": lambda user: user.role in queries.READER_ROLES}


def _choices(htcds_name: str) -> list[tuple[str, str]]:
    return list(HTCDS[htcds_name].values)


def _page_number() -> int:
    try:
        return max(int(request.args.get("page", "1")), 1)
    except ValueError:
        return 1


@pages.get("/cases")
@login_required
def cases_list():
    user = current_user()
    queries.require_reader(user)  # Forbidden: 403 (server.errors)
    given = {name: request.args.get(name, "") for name in FILTER_NAMES}
    number = _page_number()
    errors: dict = {}
    rows, total = [], 0
    try:
        filters = CaseFiltersSchema().load({k: v for k, v in given.items() if v})
    except ValidationError as error:
        errors = error.messages
    else:
        page = queries.Page(limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
        rows, total = queries.list_cases(user, filters, page)
        audit.record(
            "case.list",
            user_id=user.id,
            address=request.remote_addr,
            details={**queries.filters_summary(filters), "via": "page", "total": total},
        )
    summaries = [_summary(case) for case in rows]
    missions = queries.visible_missions(user)
    db.session.commit()
    return render_template(
        "cases_list.html",
        cases=summaries,
        total=total,
        given=given,
        errors=errors,
        number=number,
        pages=max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        options={
            "status": _choices("cas_Status"),
            "gender": _choices("prs_Gender"),
            "age_band": [(band, band) for band in queries.AGE_BANDS],
            "citizenship": country_choices(),
            "exploitation": _choices("vic_TypeOfExploitation"),
            "mission": [(code, code) for code in missions],
        },
    ), 400 if errors else 200


def _summary(case) -> dict:
    """What a list row shows: codes and dates, never a name or contact detail."""
    return {
        "uuid": case.uuid,
        "reference": case.reference or case.uuid[:8],
        "status": display.show("cas_Status", case.status),
        "gender": display.show("prs_Gender", case.person.gender),
        "age_band": queries.age_band(case.person.birth_year) or display.NOT_GIVEN,
        "citizenship": ", ".join(case.person.citizenship) or display.NOT_GIVEN,
        "exploitation": display.show("vic_TypeOfExploitation", queries.exploitation_types(case)),
        "mission": case.owner_mission,
        "opened": case.opened_at.date().isoformat(),
        "retrafficked": queries.is_retrafficked(case),
    }


@pages.get("/cases/<uuid>")
@login_required
def case_page(uuid: str):
    user = current_user()
    try:
        case = queries.get_case(user, uuid)  # Forbidden: 403 (server.errors)
    except queries.CaseNotFound:
        record_refused_case(user.id, uuid, request.remote_addr, via="page")
        db.session.commit()
        raise  # 404 (server.errors)
    html = render_template(
        "case_detail.html",
        case=case,
        retrafficked=queries.is_retrafficked(case),
        age_band=queries.age_band(case.person.birth_year),
        sections=[
            ("Person", display.rows(case.person, display.part_fields("person"))),
            ("Case", display.rows(case, display.part_fields("case"))),
            ("Victim", display.rows(case.victim, display.part_fields("victim"))),
            ("Consent", display.rows(case.consent, display.part_fields("consent"))),
        ],
        records=[
            ("Trafficking episodes", _records(case.episodes, Record.EPISODES)),
            ("Movement events", _records(case.movement_events, Record.MOVEMENT_EVENTS)),
            ("Perpetrators", _records(case.perpetrators, Record.PERPETRATORS)),
            ("Support plans", _records(case.support_plans, Record.SUPPORT_PLANS)),
            ("Assistance", _records(case.assistance, Record.ASSISTANCE)),
        ],
        timeline=case_timeline(case),
        transfers=transfer_panel(user, case),
    )
    audit.record(
        "case.view",
        user_id=user.id,
        object_type="case",
        object_id=case.uuid,
        mission=case.owner_mission,
        address=request.remote_addr,
        details={"via": "page"},
    )
    db.session.commit()
    return html


def _records(items, record: Record) -> list[list[display.Row]]:
    specs = display.record_fields(record)
    return [display.rows(item, specs) for item in items]
