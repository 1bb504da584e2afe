"""Receiving a batch: check who sent it, when, and that it is new; then apply each change.

Every check comes before the first write, so a refused batch changes nothing. The caller
commits once (the nonce and the applied changes together) or rolls back.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import current_app
from marshmallow import ValidationError
from sqlalchemy import delete, select

from server.extensions import db
from sync.apply import APPLIED, INVALID, NOT_YET, apply_received
from sync.models import SyncInboxChange, SyncSeenNonce
from sync.payload import InvalidChange
from sync.registry import Registry
from sync.schemas import BatchSchema
from sync.signing import (
    BatchRefused,
    MalformedBatch,
    NotForThisMission,
    ReplayedBatch,
    StaleBatch,
    parse_timestamp,
    verify_batch,
)

log = logging.getLogger(__name__)


class ForeignOrigin(BatchRefused):
    """A mission sends its own changes only; relaying others' is not part of the protocol."""

    status, code = 403, "foreign_origin"


@dataclass(frozen=True)
class Ack:
    change_id: str
    #: applied (new) or duplicate (applied before: nothing changed).
    status: str


def receive_batch(
    envelope: object,
    *,
    registry: Registry,
    own_mission: str,
    now: dt.datetime,
    max_skew: dt.timedelta,
    max_changes: int,
) -> list[Ack]:
    """Apply a signed batch from a peer and acknowledge each change; raise BatchRefused."""

    def public_key_for(code: str) -> Ed25519PublicKey | None:
        mission = registry.get(code) if code != own_mission else None
        return mission.verifying_key() if mission is not None else None

    batch = _validated(verify_batch(envelope, public_key_for), max_changes)
    sender = batch["sender"]
    if batch["recipient"] != own_mission:
        raise NotForThisMission(f"This batch is for {batch['recipient']}, not {own_mission}.")
    foreign = [c["change_id"] for c in batch["changes"] if c["origin_mission"] != sender]
    if foreign:
        raise ForeignOrigin(f"{len(foreign)} change(s) did not originate at {sender}.")
    sent_at = parse_timestamp(batch["sent_at"])
    if abs(now - sent_at) > max_skew:
        raise StaleBatch(
            f"sent_at is {int((now - sent_at).total_seconds())} s from this server's clock; "
            f"at most {int(max_skew.total_seconds())} s is accepted. Check the clocks, then "
            "sign the batch again."
        )
    _remember_nonce(sender, batch["nonce"], sent_at, now, max_skew)
    return [
        Ack(c["change_id"], apply_change(sender, c, registry=registry, own_mission=own_mission))
        for c in batch["changes"]
    ]


def _validated(batch: dict, max_changes: int) -> dict:
    try:
        batch = BatchSchema().load(batch)
    except ValidationError as error:
        raise MalformedBatch(f"Invalid batch: {error.messages}") from None
    if len(batch["changes"]) > max_changes:
        raise MalformedBatch(f"At most {max_changes} changes per batch.")
    return batch


def _remember_nonce(
    sender: str, nonce: str, sent_at: dt.datetime, now: dt.datetime, max_skew: dt.timedelta
) -> None:
    """Refuse a nonce seen before; keep it as long as its batch could still be fresh."""
    naive = sent_at.replace(tzinfo=None)
    if db.session.get(SyncSeenNonce, (sender, nonce)) is not None:
        raise ReplayedBatch("This batch was received before (same nonce).")
    horizon = (now - 2 * max_skew).replace(tzinfo=None)
    db.session.execute(delete(SyncSeenNonce).where(SyncSeenNonce.sent_at < horizon))
    db.session.add(SyncSeenNonce(sender_mission=sender, nonce=nonce, sent_at=naive))


def apply_change(
    sender: str,
    change: dict,
    *,
    registry: Registry | None = None,
    own_mission: str | None = None,
) -> str:
    """Apply one change once, keyed by its change id; its ack status.

    duplicate (received before from the same origin: nothing changes), or what
    sync.apply made of it: applied, stale (older than what was applied from its origin),
    ignored (not ours to apply) or invalid (a value the case schema refuses, or an id
    another origin's change had: not kept, so that the sender retries it and its admins
    see it dead-lettered, never dropped as a repeat).
    """
    known_from = db.session.scalar(
        select(SyncInboxChange.origin_mission).where(
            SyncInboxChange.change_id == change["change_id"]
        )
    )
    if known_from == change["origin_mission"]:
        return "duplicate"
    if known_from is not None:
        # Another mission's change had this id: not a repeat, and never silently dropped.
        log.warning("sync change from %s refused: its id is another mission's", sender)
        return INVALID
    try:
        status = apply_received(
            change,
            own_mission=own_mission or current_app.config["MISSION_CODE"],
            registry=registry,
        )
    except InvalidChange as error:
        log.warning("sync change from %s refused: %s", sender, error)
        return INVALID
    if status == NOT_YET:
        return status  # not kept: its next attempt is a new one
    db.session.add(
        SyncInboxChange(
            change_id=change["change_id"],
            sender_mission=sender,
            origin_mission=change["origin_mission"],
            case_uuid=change["case_uuid"],
            version=change["version"],
            kind=change["kind"],
            # Kept only when applied: a late copy of what a tombstone withdrew is not kept.
            payload=change["payload"] if status == APPLIED else {},
        )
    )
    db.session.flush()  # a repeat later in the same batch sees it
    return status
