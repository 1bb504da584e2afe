"""Transfers and referrals between missions, as in Primero. No HTTP; the caller commits.

One mission owns a case at a time. A **transfer** moves ownership, and only once the
recipient accepts; a **referral** shares the case without moving it. Both can be revoked
by the owner: a pending one at any time, an accepted referral too (its copy is then
withdrawn); an accepted transfer cannot (the new owner may transfer the case back).

Both ends hold a SyncTransfer row with the same uuid. The messages travel through the
outbox, delivery and inbox like any change (signed batches, change ids keyed on the
transfer's uuid, so a replay changes nothing):

- `transfer_request` (owner → recipient): the transfer's uuid, kind and reason code, and
  the person's linkage encoding. Never a name, date or other field of the case: the
  recipient opens a review item whose candidates are its own persons the encoding matches
  (ids, scores, rule), so whoever accepts can say "this is our person X".
- `transfer_accept` / `transfer_reject` (recipient → owner). At the owner, whichever it
  processes first of an accept and its own revocation wins; the later one is answered by
  the revocation already sent (never two owners). An accepted transfer makes the recipient
  the owner here (a new case version) and sends it
- `transfer_case` (old owner → new owner): the case as that link's allow-list permits (as
  any upsert to that mission: the registry decides what a new owner may hold), the
  encoding, the clocks and the consent statement in force (the new owner's routing needs
  it; it is consent codes, not personal values). The recipient applies it as the case it
  now owns, joined to the person chosen on acceptance, and routes it as its owner. The old
  owner keeps its copy (owner = new owner): its follow-ups go to the new owner.
- An accepted referral adds the recipient to the case's linked missions (sync.routing), so
  the normal upserts flow; revoked, the routing tombstone rule withdraws the copy.
- `transfer_revoke` (owner → recipient): the recipient closes its row and review item.
- A transfer hands the new owner the case's **accepted referrals** (`transfer_case`
  lists them: uuid, mission, reason): the new owner routes the case to them, may revoke
  them, and takes their follow-ups; the old owner no longer may. All three ends keep the
  referral's row, naming the new owner as the referring mission (the referred mission's
  row changes when it follows the new owner, sync.apply). Without this, a referred
  mission the new owner does not link kept a copy nobody updated or could withdraw.

Audit events (`transfer.request|accept|reject|revoke`, `referral.…`) hold ids and
mission codes only. The messages received are applied by sync.transfer_inbox.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuid_module

from flask import current_app
from sqlalchemy import select, update

from server.audit.operations import record
from server.auth.models import User
from server.cases.models import Case, CaseVersion, new_uuid
from server.extensions import db
from sync.linkage_store import encoding_for
from sync.models import SyncOutbox, SyncReview, SyncTransfer
from sync.outbox import referred_to
from sync.registry import Registry, load_registry
from sync.routing import consent_allows, linked_missions

TRANSFER, REFERRAL = "transfer", "referral"
KINDS = (TRANSFER, REFERRAL)
#: Why a case is transferred or referred: a code from this list, never free text (a free
#: text would soon hold names).
REASONS = {
    "services": "Services closer to where the person is",
    "return": "Return or repatriation",
    "relocated": "The person moved",
    "specialised_care": "Specialised care",
    "legal": "Legal proceedings",
    "other": "Other (see the case)",
}
#: Message change ids are uuid5(transfer uuid / message kind) in this namespace.
MESSAGE_NAMESPACE = uuid_module.UUID("2d0f4c8e-7b1a-5e3f-8c6d-9a4b1e2f3c5d")


class TransferRefused(ValueError):
    """A transfer or referral that may not be made or changed; the message says why."""


class TransferNotFound(LookupError):
    """No transfer with this uuid for this case."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _own() -> str:
    return current_app.config["MISSION_CODE"]


# ---- reading ----------------------------------------------------------------------------


def transfers_of(case_uuid: str) -> list[SyncTransfer]:
    """A case's transfers and referrals here, newest first."""
    return list(
        db.session.scalars(
            select(SyncTransfer)
            .where(SyncTransfer.case_uuid == case_uuid)
            .order_by(SyncTransfer.id.desc())
        )
    )


def by_uuid(transfer_uuid: str) -> SyncTransfer | None:
    return db.session.scalar(select(SyncTransfer).where(SyncTransfer.uuid == transfer_uuid))


def may_revoke(transfer: SyncTransfer, own_mission: str) -> bool:
    """At the owner: a pending transfer or referral, or an accepted referral."""
    return transfer.from_mission == own_mission and (
        transfer.state == "pending" or (transfer.kind == REFERRAL and transfer.state == "accepted")
    )


# ---- the owner's side -------------------------------------------------------------------


def request(
    case: Case,
    kind: str,
    to_mission: str,
    user: User,
    reason: str,
    *,
    address: str | None = None,
    registry: Registry | None = None,
) -> SyncTransfer:
    """Ask `to_mission` to take (transfer) or share (referral) the case. Raises
    TransferRefused: not the owner, an unknown mission or this one, a reason not on the
    list, no consent for that mission, or one already pending."""
    own = _own()
    registry = registry if registry is not None else load_registry()
    if kind not in KINDS:
        raise TransferRefused(f"Unknown kind {kind!r}: transfer or referral.")
    if case.owner_mission != own:
        raise TransferRefused(f"Only the owner ({case.owner_mission}) may {_verb(kind)} this case.")
    if to_mission == own:
        raise TransferRefused(f"This case is already {own}'s.")
    if registry.get(to_mission) is None:
        raise TransferRefused(f"{to_mission or 'That mission'} is not a registered mission.")
    if reason not in REASONS:
        raise TransferRefused("Choose a reason from the list.")
    if not consent_to(case, to_mission, registry, own):
        raise TransferRefused(
            f"The person's consent does not allow sharing with {to_mission}: it must be given, "
            "for sharing, not withdrawn, and name that mission unless it is a linked one."
        )
    _one_at_a_time(case.uuid, kind, to_mission, own)
    transfer = SyncTransfer(
        uuid=new_uuid(),
        kind=kind,
        case_uuid=case.uuid,
        from_mission=own,
        to_mission=to_mission,
        state="pending",
        reason=reason,
        requested_by=user.id,
    )
    db.session.add(transfer)
    send_message(
        transfer,
        "transfer_request",
        to_mission,
        case.version,
        {
            "transfer": transfer.uuid,
            "kind": kind,
            "reason": reason,
            "linkage": encoding_for(case),
        },
    )
    audit_event(transfer, "request", user, address)
    db.session.flush()
    return transfer


def _one_at_a_time(case_uuid: str, kind: str, to_mission: str, own: str) -> None:
    """One pending transfer per case; one pending or active referral per recipient."""
    pending = db.session.scalars(
        select(SyncTransfer).where(
            SyncTransfer.case_uuid == case_uuid,
            SyncTransfer.from_mission == own,
            SyncTransfer.state == "pending",
        )
    ).all()
    for other in pending:
        if other.kind == TRANSFER and kind == TRANSFER:
            raise TransferRefused(f"A transfer to {other.to_mission} is pending: revoke it first.")
        if other.kind == REFERRAL == kind and other.to_mission == to_mission:
            raise TransferRefused(f"A referral to {to_mission} is pending already.")
    if kind == REFERRAL and to_mission in referred_to(db.session, case_uuid, own):
        raise TransferRefused(f"The case is already referred to {to_mission}.")


def consent_to(case: Case, mission: str, registry: Registry, own_mission: str) -> bool:
    """Routing's consent gate for one recipient: a mission that is not linked to the case
    must be named in the consent statement (an empty list means linked missions only)."""
    consent = case.consent
    if not consent_allows(consent, mission):
        return False
    return bool(consent.recipient_missions) or mission in linked_missions(
        case, registry, own_mission
    )


def hand_referrals_over(case_uuid: str, old_owner: str, new_owner: str) -> list[dict]:
    """At the old owner, accepting a transfer: the case's accepted referrals become the
    new owner's (audited). What `transfer_case` tells the new owner of them."""
    rows = db.session.scalars(
        select(SyncTransfer)
        .where(*_handed_over(case_uuid, old_owner, new_owner))
        .order_by(SyncTransfer.id)
    ).all()
    for row in rows:
        row.from_mission = new_owner
        audit_event(row, "handover", None, None, via="sync")
    return [{"transfer": r.uuid, "to": r.to_mission, "reason": r.reason} for r in rows]


def _handed_over(case_uuid: str, old_owner: str, new_owner: str) -> tuple:
    """The referrals a transfer hands over: the old owner's accepted ones, but one to the
    new owner itself (it owns the case now)."""
    return (
        SyncTransfer.case_uuid == case_uuid,
        SyncTransfer.from_mission == old_owner,
        SyncTransfer.to_mission != new_owner,
        SyncTransfer.kind == REFERRAL,
        SyncTransfer.state == "accepted",
    )


def take_referrals(case_uuid: str, own_mission: str, referrals: list[dict], registry) -> None:
    """At the new owner: the referrals the old owner handed over, as this mission's own
    accepted ones (audited). A mission this registry does not know is left out: nothing
    could reach it (its copy stays as it is, owned here)."""
    for referral in referrals:
        if referral["to"] == own_mission or registry.get(referral["to"]) is None:
            continue
        if by_uuid(referral["transfer"]) is not None:
            continue  # a replay, or a referral of ours
        row = SyncTransfer(
            uuid=referral["transfer"],
            kind=REFERRAL,
            case_uuid=case_uuid,
            from_mission=own_mission,
            to_mission=referral["to"],
            state="accepted",
            reason=referral["reason"],
            decided_at=utcnow(),
        )
        db.session.add(row)
        audit_event(row, "handover", None, None, via="sync")
    db.session.flush()


def follow_referrals(case_uuid: str, old_owner: str, new_owner: str) -> None:
    """At a referred mission whose copy follows the new owner: the referral is the new
    owner's now (its revocation is the one to take)."""
    db.session.execute(
        update(SyncTransfer)
        .where(*_handed_over(case_uuid, old_owner, new_owner))
        .values(from_mission=new_owner)
        .execution_options(synchronize_session=False)
    )


def revoke(transfer: SyncTransfer, user: User, *, address: str | None = None) -> SyncTransfer:
    """Withdraw a pending transfer or referral, or end an accepted referral (its copy is
    withdrawn by a tombstone). An accepted transfer cannot be revoked."""
    own = _own()
    if not may_revoke(transfer, own):
        if transfer.from_mission != own:
            raise TransferRefused("Only the mission that asked may revoke it.")
        if transfer.kind == TRANSFER and transfer.state == "accepted":
            raise TransferRefused(
                f"The transfer was accepted: {transfer.to_mission} owns the case now "
                "and may transfer it back."
            )
        raise TransferRefused(f"The {transfer.kind} was {transfer.state} already.")
    was_accepted = transfer.state == "accepted"
    if not close(transfer, "revoked", user, only_from=transfer.state):
        raise TransferRefused(f"The {transfer.kind} was {transfer.state} meanwhile.")
    case = case_by_uuid(transfer.case_uuid)
    version = case.version if case is not None else 1
    send_message(
        transfer, "transfer_revoke", transfer.to_mission, version, {"transfer": transfer.uuid}
    )
    if was_accepted and case is not None:
        new_version(case, {"referral": {"to": transfer.to_mission, "ended": True}}, route=True)
    audit_event(transfer, "revoke", user, address)
    db.session.flush()
    return transfer


# ---- the recipient's side ---------------------------------------------------------------


def for_review(review: SyncReview) -> SyncTransfer:
    transfer = by_uuid((review.details or {}).get("transfer", ""))
    if transfer is None or transfer.to_mission != _own():
        raise TransferNotFound(f"the {review.kind} of item {review.id} is not known here.")
    return transfer


def accept(
    review: SyncReview, user: User, person_id: int | None = None, *, address: str | None = None
) -> SyncTransfer:
    """Take the transfer or referral of a review item; `person_id`, one of its candidates,
    is the person here the case is about. The answer travels to the owner."""
    transfer = for_review(review)
    if person_id is not None and person_id not in [c["person_id"] for c in review.candidates]:
        raise TransferRefused(f"Person {person_id} is not a candidate of this {review.kind}.")
    _still_pending(transfer, "accepted", user)
    transfer.person_id = person_id
    send_message(transfer, "transfer_accept", transfer.from_mission, 1, {"transfer": transfer.uuid})
    audit_event(transfer, "accept", user, address)
    db.session.flush()
    return transfer


def reject(review: SyncReview, user: User, *, address: str | None = None) -> SyncTransfer:
    """Decline: the owner keeps the case, and nothing of it was ever sent here."""
    transfer = for_review(review)
    _still_pending(transfer, "rejected", user)
    send_message(transfer, "transfer_reject", transfer.from_mission, 1, {"transfer": transfer.uuid})
    audit_event(transfer, "reject", user, address)
    db.session.flush()
    return transfer


def _still_pending(transfer: SyncTransfer, state: str, user: User) -> None:
    """Decide a pending transfer, or say what it became (e.g. revoked meanwhile)."""
    if not close(transfer, state, user, only_from="pending"):
        raise TransferRefused(f"The {transfer.kind} was {transfer.state} already.")


# ---- shared ----------------------------------------------------------------------------


def message_change_id(transfer_uuid: str, kind: str) -> str:
    return str(uuid_module.uuid5(MESSAGE_NAMESPACE, f"{transfer_uuid}/{kind}"))


def send_message(
    transfer: SyncTransfer, kind: str, recipient: str, version: int, payload: dict
) -> None:
    """Queue one message of the transfer, once (its change id is keyed on the uuid)."""
    change_id = message_change_id(transfer.uuid, kind)
    if db.session.scalar(select(SyncOutbox.id).where(SyncOutbox.change_id == change_id)):
        return
    db.session.add(
        SyncOutbox(
            change_id=change_id,
            case_uuid=transfer.case_uuid,
            recipient_mission=recipient,
            origin_mission=_own(),
            version=max(version, 1),
            kind=kind,
            payload=payload,
            state="pending",
            attempts=0,
        )
    )


def close(transfer: SyncTransfer, state: str, user: User | None, *, only_from: str) -> bool:
    """Move the transfer from `only_from` to `state`, unless it changed meanwhile (False).

    One conditional UPDATE: of an accept and a revocation processed at once, the second
    finds the row changed (PostgreSQL waits for the first's lock, then re-reads it).
    """
    db.session.flush()
    values = {"state": state, "decided_at": utcnow()}
    if user is not None:
        values["decided_by"] = user.id
    changed = db.session.execute(
        update(SyncTransfer)
        .where(SyncTransfer.id == transfer.id, SyncTransfer.state == only_from)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(transfer)
    return changed == 1


def case_by_uuid(case_uuid: str) -> Case | None:
    return db.session.scalar(select(Case).where(Case.uuid == case_uuid))


def new_version(
    case: Case, changes: dict, *, route: bool = False, registry: Registry | None = None
) -> CaseVersion:
    """A version recording the transfer or referral (the timeline shows it); routed when
    who may receive the case changed."""
    from sync.outbox import record_case_change

    case.version += 1
    version = CaseVersion(case=case, version=case.version, changes=changes, conflicts=[])
    db.session.add(version)
    db.session.flush()
    if route:
        record_case_change(db.session, case, version, registry=registry)
    return version


def audit_event(
    transfer: SyncTransfer, verb: str, user: User | None, address: str | None, via: str = "page"
) -> None:
    record(
        f"{transfer.kind}.{verb}",
        user_id=user.id if user is not None else None,
        object_type="case",
        object_id=transfer.case_uuid,
        address=address,
        details={
            "transfer": transfer.uuid,
            "from": transfer.from_mission,
            "to": transfer.to_mission,
            "reason": transfer.reason,
            "via": via,
        },
    )


def _verb(kind: str) -> str:
    return "transfer" if kind == TRANSFER else "refer"
