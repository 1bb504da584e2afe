"""The transactional outbox: what routing decides is written with the case change itself.

The rows join the caller's session and are committed (or rolled back) with the case, so a
change is never sent without being saved, nor saved without being queued for sending.
An upsert of a case this mission owns also carries its person's linkage encoding
(`payload["linkage"]`, sync.linkage_store.encoding_for) when this mission has a linkage
secret: the receiver matches it against its persons. Never names.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.models import Case, CaseVersion
from sync.clock import clock_payload, field_keys, load_clock, stamp_local
from sync.linkage_store import Linkage, encoding_for
from sync.models import CASE_CHANGE_KINDS, SyncCaseClock, SyncOutbox, SyncTransfer
from sync.registry import Mission, Registry, load_registry
from sync.routing import Route, case_payload, only_changes, route_case

if TYPE_CHECKING:
    from server.cases.operations import Outcome

#: Change ids are uuid5(origin / case uuid / version / recipient) in this namespace:
#: recording the same case version twice adds nothing, and the receiver sees the same id
#: again. The origin is part of it because each mission numbers its own versions of a
#: case: after a transfer the old owner's notice and the new owner's first upsert may
#: both be version 2 to the same copy, and without the origin the second would be taken
#: for a repeat of the first (and dropped).
CHANGE_NAMESPACE = uuid.UUID("6f1c1f0e-3d4b-5c8e-9a51-2b7f0c9d4e11")


def change_id_for(origin: str, case_uuid: str, version: int, recipient: str) -> str:
    return str(uuid.uuid5(CHANGE_NAMESPACE, f"{origin}/{case_uuid}/{version}/{recipient}"))


def previously_shared(session: Session, case_uuid: str) -> set[str]:
    """Missions whose latest change for the case was an upsert: they hold a copy."""
    latest: dict[str, str] = {}
    rows = session.execute(
        select(SyncOutbox.recipient_mission, SyncOutbox.kind)
        .where(SyncOutbox.case_uuid == case_uuid, SyncOutbox.kind.in_(CASE_CHANGE_KINDS))
        .order_by(SyncOutbox.version, SyncOutbox.id)
    )
    for recipient, kind in rows:
        latest[recipient] = kind
    return {recipient for recipient, kind in latest.items() if kind == "upsert"}


def referred_to(session: Session, case_uuid: str, own_mission: str) -> set[str]:
    """Missions this owner referred the case to (accepted, not revoked): linked as well."""
    return set(
        session.scalars(
            select(SyncTransfer.to_mission).where(
                SyncTransfer.case_uuid == case_uuid,
                SyncTransfer.from_mission == own_mission,
                SyncTransfer.kind == "referral",
                SyncTransfer.state == "accepted",
            )
        )
    )


def former_owners(session: Session, case_uuid: str, own_mission: str) -> set[str]:
    """Missions that transferred the case to this one: they keep a copy, whose follow-ups
    come here like those of any mission holding one."""
    return set(
        session.scalars(
            select(SyncTransfer.from_mission).where(
                SyncTransfer.case_uuid == case_uuid,
                SyncTransfer.to_mission == own_mission,
                SyncTransfer.kind == "transfer",
                SyncTransfer.state == "accepted",
            )
        )
    )


def case_handover_payload(session: Session, case: Case, mission: Mission) -> dict:
    """What a transfer hands its new owner (sync.transfers): the case as that link's
    allow-list permits, like any upsert to it, with the person's encoding, the clocks and
    the consent statement in force (the new owner's consent gate needs it)."""
    payload = case_payload(case, mission)
    encoding = encoding_for(case)
    if encoding is not None:
        payload["linkage"] = encoding
    consent = case.consent
    payload["consent_statement"] = (
        None
        if consent is None
        else {
            "given": consent.given,
            "sharing": consent.sharing,
            "research": consent.research,
            "purposes": list(consent.purposes or []),
            "recipient_missions": list(consent.recipient_missions or []),
            "withdrawn": bool(consent.withdrawn),
        }
    )
    payload["clock"] = clock_payload(load_clock(session, case.uuid), payload)
    return payload


def record_owner_handover(
    session: Session,
    case: Case,
    case_version: CaseVersion,
    *,
    registry: Registry | None = None,
    own_mission: str | None = None,
) -> list[SyncOutbox]:
    """After a transfer, tell each other mission holding a copy who owns the case now.

    The old owner is the only one whose word those copies take (sync.apply). The upsert
    names the new owner and holds no field, record or consent: what the copies receive
    next is the new owner's routing and consent decision. Keyed like any upsert of this
    version (a replay adds nothing). Returns the rows added; the caller commits.
    """
    own_mission = own_mission or current_app.config["MISSION_CODE"]
    registry = registry if registry is not None else load_registry()
    clock = load_clock(session, case.uuid)
    rows = []
    for code in sorted(previously_shared(session, case.uuid) - {case.owner_mission, own_mission}):
        if registry.get(code) is None:
            continue  # no longer registered: nothing can reach it
        payload = {"case": {"owner_mission": case.owner_mission, "fields": {}}, "records": []}
        payload["clock"] = clock_payload(clock, payload)
        route = Route(code, "upsert", payload)
        rows.append(_queue(session, case.uuid, case_version.version, route, own_mission))
    return [row for row in rows if row is not None]


def record_case_change(
    session: Session,
    case: Case,
    case_version: CaseVersion,
    *,
    registry: Registry | None = None,
    own_mission: str | None = None,
    linkage: Linkage | None = None,
) -> list[SyncOutbox]:
    """Queue the case, as each linked mission may see it, in the caller's transaction.

    A case this mission owns goes to its linked missions; a linked mission's case held
    here (followed up here) goes back to its owner with what this version changed (see
    sync.routing). A version written here stamps the fields it changed with this
    mission's clock (sync.clock), and every upsert carries the case's clocks. Returns the
    rows added; the caller commits. A batch passes one `linkage` for all its cases: its
    encoder caches the bigrams they share.
    """
    own_mission = own_mission or current_app.config["MISSION_CODE"]
    registry = registry if registry is not None else load_registry()
    if not any(code != own_mission for code in registry.missions):
        return []  # no peers: nothing to route, no SELECT per case
    changes = case_version.changes or {}
    clock = load_clock(session, case.uuid)
    if case_version.sync_change_id is None:  # a write here; a received one keeps its stamps
        stamp_local(clock, field_keys(changes), own_mission)
    routes = route_case(
        case,
        registry,
        own_mission,
        previously_shared(session, case.uuid),
        referred_to(session, case.uuid, own_mission) if case.owner_mission == own_mission else (),
    )
    if case.owner_mission != own_mission:
        routes = _changes_only(routes, changes)
    elif any(route.kind == "upsert" for route in routes):
        routes = _with_linkage(routes, encoding_for(case, linkage))
    routes = [
        Route(r.mission, r.kind, {**r.payload, "clock": clock_payload(clock, r.payload)})
        if r.kind == "upsert"
        else r
        for r in routes
    ]
    rows = [
        _queue(session, case.uuid, case_version.version, route, own_mission) for route in routes
    ]
    return [row for row in rows if row is not None]


def _changes_only(routes: list[Route], changes: dict) -> list[Route]:
    kept = []
    for route in routes:
        if route.kind == "upsert":
            payload = only_changes(route.payload, changes)
            if payload is None:
                continue  # nothing the owner may receive changed
            route = Route(route.mission, route.kind, payload)
        kept.append(route)
    return kept


def _with_linkage(routes: list[Route], encoding: dict | None) -> list[Route]:
    if encoding is None:
        return routes
    return [
        Route(r.mission, r.kind, {**r.payload, "linkage": encoding}) if r.kind == "upsert" else r
        for r in routes
    ]


def _queue(
    session: Session, case_uuid: str, version: int, route: Route, own_mission: str
) -> SyncOutbox | None:
    """Add the outbox row for one route, unless this case version was recorded already."""
    change_id = change_id_for(own_mission, case_uuid, version, route.mission)
    if session.scalar(select(SyncOutbox.id).where(SyncOutbox.change_id == change_id)):
        return None
    row = SyncOutbox(
        change_id=change_id,
        case_uuid=case_uuid,
        recipient_mission=route.mission,
        origin_mission=own_mission,
        version=version,
        kind=route.kind,
        payload=route.payload,
        state="pending",
        attempts=0,
    )
    session.add(row)
    return row


def record_case_deletion(
    session: Session, case_uuid: str, version: int, *, own_mission: str | None = None
) -> list[SyncOutbox]:
    """Queue a tombstone for every mission holding a copy of a case being deleted.

    `version` is one past the case's last version. The caller deletes and commits.
    """
    own_mission = own_mission or current_app.config["MISSION_CODE"]
    clock = session.get(SyncCaseClock, case_uuid)
    if clock is not None:
        session.delete(clock)
    rows = [
        _queue(session, case_uuid, version, Route(recipient, "tombstone", {}), own_mission)
        for recipient in sorted(previously_shared(session, case_uuid))
    ]
    return [row for row in rows if row is not None]


def record_normalization(
    session: Session,
    outcome: Outcome,
    *,
    registry: Registry | None = None,
    linkage: Linkage | None = None,
) -> list[SyncOutbox]:
    """The hook for the submission jobs: queue the version a normalization just made.

    Call it after the session was flushed (the new case has its id), before the commit. A
    batch passes the registry it read once, and one linkage encoder.
    """
    case = outcome.case
    if case is None or outcome.already_applied or outcome.version is None:
        return []
    return record_case_change(session, case, outcome.version, registry=registry, linkage=linkage)
