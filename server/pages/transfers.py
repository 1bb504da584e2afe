"""Transfers and referrals on the case page (admins, at the owner): ask, and revoke.

The domain is sync.transfers; here a form is parsed, one operation called, its refusal
flashed. The recipient decides in its review queue (server.pages.review).
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for

from server.audit.operations import record_refused_case
from server.auth.models import User
from server.cases import queries
from server.cases.models import Case
from server.extensions import db
from server.pages import pages
from server.security import admin_required, current_user, login_required
from sync import transfers
from sync.delivery import wake_deliveries
from sync.registry import load_registry

KIND_LABELS = {"transfer": "Transfer", "referral": "Referral"}


def transfer_panel(user: User, case: Case) -> dict:
    """What the case page shows of transfers: the case's list, and for an admin at the
    owner the missions it may be sent to and the reasons to choose from."""
    own = current_app.config["MISSION_CODE"]
    may_ask = user.is_admin and case.owner_mission == own
    missions = sorted(code for code in load_registry().missions if code != own) if may_ask else []
    return {
        "rows": transfers.transfers_of(case.uuid),
        "may_ask": may_ask,
        "may_revoke": lambda t: user.is_admin and transfers.may_revoke(t, own),
        "missions": missions,
        "reasons": transfers.REASONS,
        "kinds": KIND_LABELS,
    }


def _case_for_admin(uuid: str) -> Case:
    """The case, in the user's scope; absent or out of scope is 404 (server.errors), and
    audited as the case page does."""
    user = current_user()
    try:
        return queries.get_case(user, uuid)
    except queries.CaseNotFound:
        record_refused_case(user.id, uuid, request.remote_addr, via="page")
        db.session.commit()
        raise


@pages.post("/cases/<uuid>/transfers")
@login_required
@admin_required
def request_transfer(uuid: str):
    case = _case_for_admin(uuid)
    kind = request.form.get("kind", "")
    to_mission = request.form.get("to_mission", "")
    try:
        made = transfers.request(
            case,
            kind,
            to_mission,
            current_user(),
            request.form.get("reason", ""),
            address=request.remote_addr,
        )
    except transfers.TransferRefused as refusal:
        db.session.rollback()
        flash(f"{refusal} Nothing was sent.", "error")
    else:
        db.session.commit()
        wake_deliveries({made.to_mission})
        flash(
            f"{KIND_LABELS[made.kind]} asked of {made.to_mission}: only the person's encoding "
            "was sent. The case travels once they accept.",
            "success",
        )
    return redirect(url_for("pages.case_page", uuid=uuid, _anchor="transfers"))


@pages.post("/cases/<uuid>/transfers/<transfer_uuid>/revoke")
@login_required
@admin_required
def revoke_transfer(uuid: str, transfer_uuid: str):
    _case_for_admin(uuid)
    transfer = transfers.by_uuid(transfer_uuid)
    if transfer is None or transfer.case_uuid != uuid:
        abort(404)
    try:
        transfers.revoke(transfer, current_user(), address=request.remote_addr)
    except transfers.TransferRefused as refusal:
        db.session.rollback()
        flash(f"{refusal} Nothing was changed.", "warning")
    else:
        db.session.commit()
        wake_deliveries({transfer.to_mission})
        flash(f"{KIND_LABELS[transfer.kind]} to {transfer.to_mission} revoked.", "success")
    return redirect(url_for("pages.case_page", uuid=uuid, _anchor="transfers"))
