"""Writing and reading the audit trail; no HTTP here.

`record` only adds the event to the session: the caller's commit (or rollback) is the
action's, so an action is never kept without its event, nor an event without its action.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import Select, func, select

from server.audit.models import AuditEvent
from server.extensions import db

#: Every action recorded, with what it means; the audit page filters by these.
ACTIONS = {
    "login": "logged in (page or API session; a phone: once a day per address)",
    "login.failed": "a login was refused (wrong password, unknown login or locked; page, API "
    "or phone)",
    "case.view": "opened one case (page or API)",
    "case.refused": "asked for a case that is absent or out of scope (answered 404)",
    "case.list": "listed cases (page or API)",
    "audit.view": "opened the audit log",
    "audit.export": "exported the audit log (CSV or JSON)",
    "submission.view": "read a submission's XML (API)",
    "submission.attachment": "read a submission's attachment (API)",
    "submission.refused": "asked for a submission that is absent or out of scope (answered 404)",
    "submission.retry": "retried a failed submission",
    "submission.discard": "discarded a failed submission",
    "form.publish": "published a form version",
    "form.state": "opened, closed or set a form closing (phones may or may not fill it)",
    "form.media": "uploaded media files of a form (or of its draft)",
    "project.create": "created a project",
    "project.key": "turned on a project's managed encryption (the passphrase is never recorded)",
    "app_user.create": "created an app user (a phone's access)",
    "app_user.revoke": "revoked an app user",
    "app_user.qr": "was shown an app user's QR code (it carries the phone's key)",
    "app_user.forms": "gave an app user (a phone) forms or took them away",
    "sync.retry": "sent a peer mission's dead-lettered changes again",
    "user.create": "created a user (name and password never recorded)",
    "user.role": "changed a user's role",
    "user.deactivate": "deactivated a user (they can no longer log in)",
    "user.reactivate": "reactivated a user",
    "user.password_reset": "reset a user's password (the password is never recorded)",
    "user.projects": "changed the projects a user may reach",
    "review.accept": "accepted a sync review item (e.g. merged a possible duplicate person)",
    "review.reject": "rejected a sync review item (e.g. not the same person)",
    "transfer.request": "asked a mission to take over a case (only its encoding travels)",
    "transfer.accept": "a transfer was accepted (here, or by the recipient mission)",
    "transfer.reject": "a transfer was declined (here, or by the recipient mission)",
    "transfer.revoke": "withdrew a pending transfer",
    "referral.request": "referred a case to a mission (only its encoding travels)",
    "referral.accept": "a referral was accepted (here, or by the recipient mission)",
    "referral.reject": "a referral was declined (here, or by the recipient mission)",
    "referral.revoke": "withdrew a referral (an accepted one: its copy is withdrawn)",
    "referral.handover": "a transfer handed the case's accepted referral to its new owner",
}
MAX_LIMIT = 500


def record(
    action: str,
    *,
    user_id: int | None = None,
    app_user_id: int | None = None,
    object_type: str | None = None,
    object_id: object = None,
    mission: str | None = None,
    address: str | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Add one event to the caller's transaction. Pass ids and codes, never personal values."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}; add it to ACTIONS.")
    event = AuditEvent(
        action=action,
        user_id=user_id,
        app_user_id=app_user_id,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        mission=mission or current_app.config["MISSION_CODE"],
        address=address,
        details=details or {},
    )
    db.session.add(event)
    return event


def record_refused_case(user_id: int, uuid: str, address: str | None, via: str) -> None:
    """Someone asked for a case they may not see, or that does not exist (the two answer
    alike): kept, since probing for another mission's cases is what the trail is for."""
    record(
        "case.refused",
        user_id=user_id,
        object_type="case",
        object_id=uuid[:64],
        address=address,
        details={"via": via},
    )


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None
    user_id: int | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None  #: inclusive


def _query(filters: AuditFilters) -> Select:
    query = select(AuditEvent)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.user_id is not None:
        query = query.where(AuditEvent.user_id == filters.user_id)
    if filters.object_type:
        query = query.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(AuditEvent.object_id == filters.object_id)
    if filters.since:
        query = query.where(AuditEvent.at >= dt.datetime.combine(filters.since, dt.time()))
    if filters.until:
        end = dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time())
        query = query.where(AuditEvent.at < end)
    return query


def list_events(
    filters: AuditFilters, *, limit: int = 50, offset: int = 0
) -> tuple[list[AuditEvent], int]:
    """One page of events, newest first, and how many match in all."""
    query = _query(filters)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(AuditEvent.id.desc()).limit(min(limit, MAX_LIMIT)).offset(offset)
    )
    return list(rows), total


CSV_COLUMNS = (
    "id",
    "at",
    "action",
    "user_id",
    "app_user_id",
    "object_type",
    "object_id",
    "mission",
    "address",
    "details",
)


def _all_events(filters: AuditFilters, batch: int) -> Iterator[AuditEvent]:
    """Every matching event, oldest first, read in batches (the log only grows)."""
    last_id = 0
    while True:
        rows = db.session.scalars(
            _query(filters).where(AuditEvent.id > last_id).order_by(AuditEvent.id).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id


def events_csv(filters: AuditFilters, batch: int = 1000) -> Iterator[str]:
    """Every matching event as CSV, oldest first."""
    yield _csv_line(CSV_COLUMNS)
    for event in _all_events(filters, batch):
        yield _csv_line(_csv_row(event))


def events_json(filters: AuditFilters, batch: int = 1000) -> Iterator[str]:
    """Every matching event as one JSON array, oldest first, `details` kept as an object;
    streamed piece by piece, so a long log is never held in memory."""
    yield "["
    for n, event in enumerate(_all_events(filters, batch)):
        yield ("," if n else "") + json.dumps(_json_row(event), separators=(",", ":"))
    yield "]"


def _json_row(event: AuditEvent) -> dict:
    return {
        **{column: getattr(event, column) for column in CSV_COLUMNS},
        "at": event.at.isoformat(timespec="seconds"),
    }


def _csv_row(event: AuditEvent) -> list[object]:
    details = ";".join(f"{key}={value}" for key, value in sorted(event.details.items()))
    return [
        event.id,
        event.at.isoformat(sep=" ", timespec="seconds"),
        event.action,
        event.user_id,
        event.app_user_id,
        event.object_type,
        event.object_id,
        event.mission,
        event.address,
        details,
    ]


def _csv_line(values: Iterable[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if v is None else _no_formula(str(v)) for v in values])
    return buffer.getvalue()


def _no_formula(text: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas: quote them."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
