"""Sync tables: the outbox (changes to send), the inbox (changes received), seen nonces,
the persons' linkage encodings, the review queue, the cases' clocks and the transfers and
referrals between missions."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, LargeBinary, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db

OUTBOX_STATES = ("pending", "sent", "acked", "dead")
#: Changes to a case's data, ordered per origin (SyncAppliedVersion).
CASE_CHANGE_KINDS = ("upsert", "tombstone")
#: The messages of a transfer or referral (sync.transfers): a request (the person's
#: encoding only), its answer, a revocation, and the case handed to its new owner.
TRANSFER_CHANGE_KINDS = (
    "transfer_request",
    "transfer_accept",
    "transfer_reject",
    "transfer_revoke",
    "transfer_case",
)
CHANGE_KINDS = CASE_CHANGE_KINDS + TRANSFER_CHANGE_KINDS
#: local: encoded here from the person's values · peer: received with a linked mission's
#: case (its person here has no names: the names stayed with the owner).
ENCODING_SOURCES = ("local", "peer")
REVIEW_KINDS = ("possible_duplicate", "conflict", "transfer", "referral")
#: revoked: a transfer or referral its owner withdrew (before or after it was decided here).
REVIEW_STATES = ("open", "accepted", "rejected", "revoked")
TRANSFER_KINDS = ("transfer", "referral")
TRANSFER_STATES = ("pending", "accepted", "rejected", "revoked")


class SyncOutbox(db.Model):
    """One change for one peer, written in the transaction that changed the case.

    No foreign key to the case: a tombstone must outlive the case it announces.
    """

    __tablename__ = "sync_outbox"
    __table_args__ = (
        CheckConstraint(f"state IN {OUTBOX_STATES!r}", name="state_known"),
        CheckConstraint(f"kind IN {CHANGE_KINDS!r}", name="kind_known"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index("ix_sync_outbox_due", "recipient_mission", "state", "next_attempt_at"),
        Index("ix_sync_outbox_case_recipient", "case_uuid", "recipient_mission"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The id the receiver keys idempotency on: one per case version and recipient.
    change_id: Mapped[str] = mapped_column(String(36), unique=True)
    case_uuid: Mapped[str] = mapped_column(String(36))
    recipient_mission: Mapped[str] = mapped_column(String(16))
    origin_mission: Mapped[str] = mapped_column(String(16))
    #: The case's version (CaseVersion.version) this change carries.
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    #: What the consent gate and the link's allow-list let through; nothing else.
    payload: Mapped[dict] = mapped_column(JSON)
    #: pending (to send) · sent (sent, not acknowledged: sent again) · acked · dead (gave up).
    state: Mapped[str] = mapped_column(String(8), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    #: Not before this time (UTC, naive); NULL means at once.
    next_attempt_at: Mapped[dt.datetime | None]
    #: Why the last attempt failed: a status and a short reason, never the payload.
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    acked_at: Mapped[dt.datetime | None]


class SyncInboxChange(db.Model):
    """A change received from a peer; its change id makes re-delivery a no-op."""

    __tablename__ = "sync_inbox_changes"
    __table_args__ = (CheckConstraint(f"kind IN {CHANGE_KINDS!r}", name="kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    change_id: Mapped[str] = mapped_column(String(36), unique=True)
    sender_mission: Mapped[str] = mapped_column(String(16))
    origin_mission: Mapped[str] = mapped_column(String(16))
    case_uuid: Mapped[str] = mapped_column(String(36), index=True)
    version: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class SyncAppliedVersion(db.Model):
    """The newest version of a case applied from one origin mission: what orders changes.

    Versions count per origin (each mission numbers its own changes to a case), so a
    change older than the one applied last from the same origin is acknowledged and kept
    in the inbox, but not applied. A tombstone counts too: an older upsert arriving after
    it cannot bring the withdrawn data back.
    """

    __tablename__ = "sync_applied_versions"
    __table_args__ = (CheckConstraint(f"kind IN {CASE_CHANGE_KINDS!r}", name="kind_known"),)

    case_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    origin_mission: Mapped[str] = mapped_column(String(16), primary_key=True)
    version: Mapped[int]
    #: The kind of that change: after a tombstone the local copy is withdrawn.
    kind: Mapped[str] = mapped_column(String(16))
    change_id: Mapped[str] = mapped_column(String(36))
    applied_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class SyncSeenNonce(db.Model):
    """A batch nonce already accepted from a sender: the same batch again is a replay.

    Kept for twice the allowed clock skew; older batches are refused as stale anyway.
    """

    __tablename__ = "sync_seen_nonces"

    sender_mission: Mapped[str] = mapped_column(String(16), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: The batch's own timestamp (UTC, naive), by which old nonces are pruned.
    sent_at: Mapped[dt.datetime] = mapped_column(index=True)
    seen_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class PersonLinkage(db.Model):
    """A local person's record-linkage encoding (sync.linkage_encoding.PersonEncoding as
    JSON), kept so that matching does not encode every person again. Personal data: whoever
    holds the linkage secret can test names against it."""

    __tablename__ = "person_linkage"
    __table_args__ = (CheckConstraint(f"source IN {ENCODING_SOURCES!r}", name="source_known"),)

    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True
    )
    #: The fingerprint of the linkage secret it was made with (sync.linkage_secret).
    key_id: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(8))
    encoding: Mapped[dict] = mapped_column(JSON)


class PersonLinkageKey(db.Model):
    """The keyed blocking keys, exact tokens and spellings of a person's encoding, indexed:
    candidates for an incoming person are found with one SELECT, not by reading them all."""

    __tablename__ = "person_linkage_keys"

    key: Mapped[bytes] = mapped_column(LargeBinary(16), primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("persons.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class SyncReview(db.Model):
    """An item of the review queue: a decision sync leaves to a person (see sync.review).

    Ids, scores and reasons only, never a personal value. A rejected possible duplicate
    stays, so that the same pair is not proposed again.
    """

    __tablename__ = "sync_reviews"
    __table_args__ = (
        CheckConstraint(f"kind IN {REVIEW_KINDS!r}", name="kind_known"),
        CheckConstraint(f"state IN {REVIEW_STATES!r}", name="state_known"),
        CheckConstraint("(state = 'open') = (decided_at IS NULL)", name="decided_when_closed"),
        Index("ix_sync_reviews_state_kind", "state", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(24))
    state: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    case_uuid: Mapped[str] = mapped_column(String(36), index=True)
    #: The case's person when the item was opened (possible duplicate: the new one).
    person_id: Mapped[int | None]
    #: Possible duplicate: [{"person_id", "score", "name", "reason"}], best first.
    candidates: Mapped[list] = mapped_column(JSON, default=list)
    #: What decided the proposal, e.g. "birthdate" (a rule's name, never a value); for a
    #: conflict its fields, missions and clocks.
    reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    #: Who decided, and when; NULL while open. Accepted: the person chosen.
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[dt.datetime | None]
    chosen_person_id: Mapped[int | None]
    #: Conflict: {"change_id", "origin_mission", "fields": [{"field", "local", "incoming"}]}
    #: (the clocks of both writes; the incoming value stays in that change's inbox payload).
    details: Mapped[dict | None] = mapped_column(JSON)


class SyncCaseClock(db.Model):
    """A case's clocks (see sync.clock): the hybrid logical clock of the last write of each
    field, and per mission the newest of its clocks this case has taken in."""

    __tablename__ = "sync_case_clocks"

    case_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    #: {mission: HLC}: the newest write of each mission this copy has seen (a version vector).
    seen: Mapped[dict] = mapped_column(JSON, default=dict)
    #: {field key: HLC of the write that set its value}; keys as sync.clock.field_keys.
    fields: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Field keys this mission (the owner) holds back while a conflict about them is open.
    held: Mapped[list] = mapped_column(JSON, default=list)


class SyncTransfer(db.Model):
    """A transfer (ownership moves once the recipient accepts) or a referral (shared, the
    owner keeps it) of one case, as this end knows it (see sync.transfers).

    Both ends hold a row with the same uuid: the owner's (from_mission = this mission) and
    the recipient's. Codes and ids only; the reason is a code from sync.transfers.REASONS.
    """

    __tablename__ = "sync_transfers"
    __table_args__ = (
        CheckConstraint(f"kind IN {TRANSFER_KINDS!r}", name="kind_known"),
        CheckConstraint(f"state IN {TRANSFER_STATES!r}", name="state_known"),
        CheckConstraint("from_mission <> to_mission", name="not_to_itself"),
        CheckConstraint("(state = 'pending') = (decided_at IS NULL)", name="decided_when_closed"),
        Index("ix_sync_transfers_case_state", "case_uuid", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The transfer's id, the same at both ends; its messages are keyed on it.
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    case_uuid: Mapped[str] = mapped_column(String(36))
    from_mission: Mapped[str] = mapped_column(String(16))
    to_mission: Mapped[str] = mapped_column(String(16))
    #: pending · accepted · rejected (by the recipient) · revoked (by the owner).
    state: Mapped[str] = mapped_column(String(8), default="pending", server_default="pending")
    reason: Mapped[str] = mapped_column(String(32))
    #: Who asked (at the owner) and who decided (where they did); local user ids, NULL at
    #: the other end.
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: At the recipient: the local person the accepting user said this is, if any.
    person_id: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    decided_at: Mapped[dt.datetime | None]
