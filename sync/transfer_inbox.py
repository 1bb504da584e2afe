"""A transfer's messages received from a peer (see sync.transfers): sync.apply hands
every change of these kinds to `receive`. Each is keyed on the transfer's uuid and checked
against the row this end holds: only the owner asks or revokes, only the recipient answers.
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from server.cases.models import Case, Consent, Person, new_uuid
from server.extensions import db
from server.projects.operations import default_project
from sync.linkage_store import current_linkage, find_matches
from sync.models import SyncReview, SyncTransfer
from sync.payload import InvalidChange, read_linkage
from sync.registry import Registry, load_registry
from sync.transfers import (
    KINDS,
    REASONS,
    REFERRAL,
    TRANSFER,
    audit_event,
    by_uuid,
    case_by_uuid,
    close,
    hand_referrals_over,
    new_version,
    send_message,
    take_referrals,
    utcnow,
)

APPLIED, IGNORED = "applied", "ignored"


def receive(change: dict, *, own_mission: str, registry: Registry | None = None) -> str:
    """Apply one transfer message from a peer; its ack status. Raises InvalidChange."""
    payload = change["payload"]
    transfer_uuid = payload.get("transfer")
    if not isinstance(transfer_uuid, str) or len(transfer_uuid) != 36:
        raise InvalidChange("transfer: the transfer's uuid.")
    origin = change["origin_mission"]
    if origin == own_mission:
        return IGNORED
    kind = change["kind"]
    if kind == "transfer_request":
        return _received_request(change, transfer_uuid, own_mission)
    transfer = by_uuid(transfer_uuid)
    if transfer is None or transfer.case_uuid != change["case_uuid"]:
        return IGNORED
    if kind in ("transfer_accept", "transfer_reject"):
        if (transfer.from_mission, transfer.to_mission) != (own_mission, origin):
            return IGNORED
        return _received_answer(transfer, kind == "transfer_accept", change, registry)
    if (transfer.from_mission, transfer.to_mission) != (origin, own_mission):
        return IGNORED
    if kind == "transfer_revoke":
        return _received_revoke(transfer)
    return _received_case(transfer, change, own_mission, registry)


def _received_request(change: dict, transfer_uuid: str, own_mission: str) -> str:
    payload = change["payload"]
    kind, reason = payload.get("kind"), payload.get("reason")
    if kind not in KINDS or reason not in REASONS:
        raise InvalidChange("kind, reason: a transfer or referral and a reason code.")
    encoding = read_linkage(payload.get("linkage"))
    if by_uuid(transfer_uuid) is not None:
        return APPLIED
    origin = change["origin_mission"]
    case = case_by_uuid(change["case_uuid"])
    if case is not None and case.owner_mission != origin:
        return IGNORED  # only the owner transfers or refers a case
    transfer = SyncTransfer(
        uuid=transfer_uuid,
        kind=kind,
        case_uuid=change["case_uuid"],
        from_mission=origin,
        to_mission=own_mission,
        state="pending",
        reason=reason,
    )
    db.session.add(transfer)
    linkage = current_linkage() if encoding is not None else None
    matches = find_matches(encoding, linkage) if linkage is not None else []
    db.session.add(
        SyncReview(
            kind=kind,
            state="open",
            case_uuid=transfer.case_uuid,
            person_id=case.person_id if case is not None else None,
            candidates=[
                {"person_id": int(m.local), "score": m.score, "name": m.name, "reason": m.reason}
                for m in matches
            ],
            reason=reason,
            details={"transfer": transfer_uuid, "from_mission": origin},
        )
    )
    db.session.flush()
    return APPLIED


def _received_answer(
    transfer: SyncTransfer, accepted: bool, change: dict, registry: Registry | None
) -> str:
    case = case_by_uuid(transfer.case_uuid)
    if accepted and (case is None or case.owner_mission != transfer.from_mission):
        if not close(transfer, "revoked", None, only_from="pending"):
            return APPLIED
        # the case is gone, or no longer ours to give: answered as revoked
        version = case.version if case is not None else 1
        message = {"transfer": transfer.uuid}
        send_message(transfer, "transfer_revoke", transfer.to_mission, version, message)
        return APPLIED
    if not close(transfer, "accepted" if accepted else "rejected", None, only_from="pending"):
        return APPLIED  # revoked first: the revocation already sent answers it
    audit_event(transfer, "accept" if accepted else "reject", None, None, via="sync")
    if not accepted:
        return APPLIED
    if transfer.kind == REFERRAL:
        new_version(case, {"referral": {"to": transfer.to_mission}}, route=True)
        return APPLIED
    _hand_over(case, transfer, registry)
    return APPLIED


def _hand_over(case: Case, transfer: SyncTransfer, registry: Registry | None) -> None:
    """The recipient owns the case now: a new version here, the case sent to it, and the
    other missions holding a copy told who their owner is now."""
    from sync.outbox import case_handover_payload, record_owner_handover

    registry = registry if registry is not None else load_registry()
    case.owner_mission = transfer.to_mission
    moved = {"from": transfer.from_mission, "to": transfer.to_mission}
    version = new_version(case, {"owner_mission": moved})
    record_owner_handover(db.session, case, version, registry=registry)
    referrals = hand_referrals_over(case.uuid, transfer.from_mission, transfer.to_mission)
    mission = registry.get(transfer.to_mission)
    if mission is None:
        return  # no longer registered: nothing can reach it
    payload = case_handover_payload(db.session, case, mission) | {
        "transfer": transfer.uuid,
        "referrals": referrals,
    }
    send_message(transfer, "transfer_case", transfer.to_mission, case.version, payload)


def _received_revoke(transfer: SyncTransfer) -> str:
    if transfer.state != "revoked":
        close(transfer, "revoked", None, only_from=transfer.state)
    review = db.session.scalar(
        select(SyncReview).where(
            SyncReview.kind == transfer.kind,
            SyncReview.case_uuid == transfer.case_uuid,
            SyncReview.state.in_(("open", "accepted")),
        )
    )
    if review is not None and (review.details or {}).get("transfer") == transfer.uuid:
        review.state = "revoked"
        review.decided_at = review.decided_at or utcnow()
    return APPLIED


def _received_case(
    transfer: SyncTransfer, change: dict, own_mission: str, registry: Registry | None
) -> str:
    """The case handed over: applied as the owner's view, then made this mission's."""
    from sync.apply import apply_handed_over

    if transfer.kind != TRANSFER or transfer.state != "accepted":
        return IGNORED
    statement = _consent_statement(change["payload"].get("consent_statement"))
    referrals = _referrals(change["payload"].get("referrals"))
    case = case_by_uuid(transfer.case_uuid)
    chosen = db.session.get(Person, transfer.person_id) if transfer.person_id else None
    if case is None and chosen is not None:
        case = _empty_copy(transfer, chosen)
    status = apply_handed_over(case, change, own_mission, registry)
    case = case_by_uuid(transfer.case_uuid)
    if case is None:
        return status
    if chosen is not None and case.person is not chosen:
        from sync.review import merge_person

        merge_person(case.person, chosen)
    case.owner_mission = own_mission
    if statement is not None:
        case.consents.append(Consent(uuid=new_uuid(), **statement))
    take_referrals(case.uuid, own_mission, referrals, registry or load_registry())
    new_version(
        case,
        {"owner_mission": {"from": transfer.from_mission, "to": own_mission}},
        route=True,
        registry=registry,
    )
    return status


def _empty_copy(transfer: SyncTransfer, person: Person) -> Case:
    """The case, not here yet, made for the person the accepting user chose."""
    project = default_project(current_app.config["DEFAULT_PROJECT_NAME"])
    case = Case(
        uuid=transfer.case_uuid,
        project_id=project.id,
        person=person,
        owner_mission=transfer.from_mission,
        status="Active",
        version=0,
    )
    db.session.add(case)
    db.session.flush()
    return case


def _referrals(data: object) -> list[dict]:
    """The accepted referrals a transfer hands over (sync.transfers.hand_referrals_over)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise InvalidChange("referrals: a list.")
    referrals = []
    for item in data:
        if not isinstance(item, dict):
            raise InvalidChange("referrals: objects with transfer, to and reason.")
        transfer, to, reason = item.get("transfer"), item.get("to"), item.get("reason")
        if not isinstance(transfer, str) or len(transfer) != 36:
            raise InvalidChange("referrals.transfer: the referral's uuid.")
        if not isinstance(to, str) or not 1 <= len(to) <= 16 or reason not in REASONS:
            raise InvalidChange("referrals: a mission code and a reason code.")
        referrals.append({"transfer": transfer, "to": to, "reason": reason})
    return referrals


def _consent_statement(data: object) -> dict | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InvalidChange("consent_statement: an object.")
    statement = {}
    for name in ("given", "sharing", "research"):
        value = data.get(name)
        if value is not None and not isinstance(value, bool):
            raise InvalidChange(f"consent_statement.{name}: true, false or null.")
        statement[name] = value
    for name in ("purposes", "recipient_missions"):
        value = data.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidChange(f"consent_statement.{name}: a list of codes.")
        statement[name] = value
    statement["withdrawn"] = data.get("withdrawn") is True
    return statement
