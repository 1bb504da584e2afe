"""A conflict decided: the incoming value (accept) or the local one (reject) becomes a new
write here, newer than both writes it settles, so that it travels as one.

At the owner (status, owner) the new version is routed as usual and every linked mission
takes it (its clock covers both writes). At a copy (consent) it settles at the copy only: a
copy's consent statement never travels. The incoming value is read back from the change
that brought it (its inbox payload); a change withdrawn since cannot be accepted.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from server.cases.fields import FIELDS
from server.cases.models import Case, CaseVersion
from server.cases.operations import derive, set_field
from server.extensions import db
from sync.apply import copy_consent
from sync.clock import CONSENT, load_clock, stamp_local
from sync.models import SyncInboxChange, SyncReview
from sync.outbox import record_case_change
from sync.payload import PART_MODELS, InvalidChange, check_value
from sync.review import ReviewClosed
from sync.routing import json_value


def settle(review: SyncReview, *, take_incoming: bool) -> CaseVersion:
    """Apply the decision on each field of a conflict item; the version it makes."""
    case = db.session.scalar(select(Case).where(Case.uuid == review.case_uuid))
    if case is None:
        raise ReviewClosed(f"Review {review.id}: its case is gone.")
    own_mission = current_app.config["MISSION_CODE"]
    entries = (review.details or {}).get("fields", [])
    fields: dict[str, object] = {}
    for entry in entries:
        name = entry["field"]
        if name == CONSENT:
            if take_incoming:
                copy_consent(case, entry["origin"], _incoming(review, entry)["purposes"])
            continue
        spec = FIELDS[name]
        if take_incoming:
            sent = _incoming(review, entry)["fields"]
            try:
                set_field(case, spec, check_value(spec, sent[name], PART_MODELS[spec.part]))
            except (KeyError, InvalidChange):
                raise ReviewClosed(f"Review {review.id}: the incoming value is gone.") from None
        part = {"case": case, "person": case.person, "victim": case.victim}[spec.part]
        fields[name] = json_value(getattr(part, spec.attribute, None))
    clock = load_clock(db.session, case.uuid)
    clock.held = sorted(set(clock.held) - {e["field"] for e in entries})
    if any(e["field"] == CONSENT for e in entries):
        stamp_local(clock, [CONSENT], own_mission)  # field stamps come with the routing below
    derive(case)
    case.version += 1
    version = CaseVersion(
        case=case,
        version=case.version,
        changes={
            "create": False,
            "fields": fields,
            "records": [],
            "review": {"id": review.id, "kept": "incoming" if take_incoming else "local"},
        },
        conflicts=[],
    )
    db.session.add(version)
    db.session.flush()
    record_case_change(db.session, case, version, own_mission=own_mission)
    return version


def _incoming(review: SyncReview, entry: dict) -> dict:
    """The payload part (`case` or `consent`) of the change that brought the incoming write."""
    payload = db.session.scalar(
        select(SyncInboxChange.payload).where(SyncInboxChange.change_id == entry["change_id"])
    )
    part = (payload or {}).get("consent" if entry["field"] == CONSENT else "case")
    if not isinstance(part, dict):
        raise ReviewClosed(f"Review {review.id}: the change it is about was withdrawn.")
    return part
