"""How the sync with each peer is doing: what waits, what died, what came in.

One place for what `casebridge sync status` prints and what the admin Sync page shows.
Plain reads returning dataclasses. Only mission codes, change ids, counts, times and the
recorded error reasons are read: never a payload (delivery writes `last_error` as a status
and a short reason, see sync.delivery).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select

from server.admin import queue_status
from server.extensions import db
from sync.delivery import UNACKED
from sync.models import OUTBOX_STATES, SyncInboxChange, SyncOutbox
from sync.registry import RegistryError, load_registry

#: Longest error reason shown; delivery keeps at most 500 characters.
ERROR_LIMIT = 200


@dataclass(frozen=True)
class DeadChange:
    change_id: str
    mission: str
    attempts: int
    error: str | None


@dataclass(frozen=True)
class PeerStatus:
    """One peer mission, both directions."""

    code: str
    name: str | None
    #: False for a code that has outbox or inbox rows but is no longer in the registry.
    registered: bool
    pending: int  #: not acknowledged yet: new, or sent without an ack (states pending, sent)
    dead: int  #: gave up after SYNC_MAX_ATTEMPTS; waits for an admin's retry
    acked: int
    #: Age of the oldest change not acknowledged yet: how far behind the peer is.
    lag_seconds: int | None
    last_delivered_at: str | None  #: "YYYY-MM-DD HH:MM:SS" UTC, the newest ack
    last_delivered_seconds: int | None
    #: The newest failure reason of a change still unacknowledged (a status, never values).
    last_error: str | None
    received: int  #: changes received from this peer (its own and relayed)
    last_received_at: str | None
    last_received_seconds: int | None


@dataclass(frozen=True)
class SyncStatus:
    as_of: str
    mission: str
    registry_ok: bool  #: False when the registry file cannot be read (peers from the tables)
    peers: list[PeerStatus]

    @property
    def dead_total(self) -> int:
        return sum(p.dead for p in self.peers)

    @property
    def pending_total(self) -> int:
        return sum(p.pending for p in self.peers)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {
            "dead_total": self.dead_total,
            "pending_total": self.pending_total,
        }


def outbox_counts() -> dict[str, dict[str, int]]:
    """Outbox rows per recipient and state, every state present (zeros kept)."""
    counts: dict[str, dict[str, int]] = {}
    for mission, state, count in db.session.execute(
        select(SyncOutbox.recipient_mission, SyncOutbox.state, func.count()).group_by(
            SyncOutbox.recipient_mission, SyncOutbox.state
        )
    ):
        counts.setdefault(mission, dict.fromkeys(OUTBOX_STATES, 0))[state] = count
    return counts


def dead_changes(mission_code: str | None = None) -> list[DeadChange]:
    """The dead-lettered changes (of one peer, or all), oldest first."""
    query = (
        select(
            SyncOutbox.change_id,
            SyncOutbox.recipient_mission,
            SyncOutbox.attempts,
            SyncOutbox.last_error,
        )
        .where(SyncOutbox.state == "dead")
        .order_by(SyncOutbox.id)
    )
    if mission_code is not None:
        query = query.where(SyncOutbox.recipient_mission == mission_code)
    return [DeadChange(*row) for row in db.session.execute(query)]


def sync_status() -> SyncStatus:
    """Every peer of the registry, and any other code the outbox or inbox names."""
    own = current_app.config["MISSION_CODE"]
    database_now = queue_status.database_now()  # stamped created_at and received_at
    utc_now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    try:
        names = {c: m.name for c, m in load_registry().missions.items() if c != own}
        registry_ok = True
    except RegistryError:
        names, registry_ok = {}, False
    counts = outbox_counts()
    oldest = _by_mission(
        select(SyncOutbox.recipient_mission, func.min(SyncOutbox.created_at))
        .where(SyncOutbox.state.in_(UNACKED))
        .group_by(SyncOutbox.recipient_mission)
    )
    delivered = _by_mission(
        select(SyncOutbox.recipient_mission, func.max(SyncOutbox.acked_at))
        .where(SyncOutbox.state == "acked")
        .group_by(SyncOutbox.recipient_mission)
    )
    received = {
        mission: (count, last)
        for mission, count, last in db.session.execute(
            select(
                SyncInboxChange.sender_mission,
                func.count(),
                func.max(SyncInboxChange.received_at),
            ).group_by(SyncInboxChange.sender_mission)
        )
    }
    errors = last_errors()
    peers = []
    for code in sorted(set(names) | set(counts) | set(received)):
        state = counts.get(code, dict.fromkeys(OUTBOX_STATES, 0))
        got, last_received = received.get(code, (0, None))
        peers.append(
            PeerStatus(
                code=code,
                name=names.get(code),
                registered=code in names,
                pending=state["pending"] + state["sent"],
                dead=state["dead"],
                acked=state["acked"],
                lag_seconds=_age(oldest.get(code), database_now),
                last_delivered_at=_text(delivered.get(code)),
                last_delivered_seconds=_age(delivered.get(code), utc_now),
                last_error=errors.get(code),
                received=got,
                last_received_at=_text(last_received),
                last_received_seconds=_age(last_received, database_now),
            )
        )
    return SyncStatus(
        as_of=database_now.strftime("%Y-%m-%d %H:%M:%S"),
        mission=own,
        registry_ok=registry_ok,
        peers=peers,
    )


def last_errors() -> dict[str, str]:
    """Per peer, the reason on its newest unacknowledged change that has one."""
    newest = (
        select(func.max(SyncOutbox.id))
        .where(SyncOutbox.state != "acked", SyncOutbox.last_error.is_not(None))
        .group_by(SyncOutbox.recipient_mission)
    )
    rows = db.session.execute(
        select(SyncOutbox.recipient_mission, SyncOutbox.last_error).where(SyncOutbox.id.in_(newest))
    )
    return {mission: error[:ERROR_LIMIT] for mission, error in rows}


def _by_mission(query) -> dict[str, dt.datetime]:
    return {mission: at for mission, at in db.session.execute(query) if at is not None}


def _age(at: dt.datetime | None, now: dt.datetime) -> int | None:
    return None if at is None else max(0, int((now - at).total_seconds()))


def _text(at: dt.datetime | None) -> str | None:
    return None if at is None else at.strftime("%Y-%m-%d %H:%M:%S")


def is_peer(code: str) -> bool:
    """A mission this node links to, or one its outbox still holds changes for."""
    if code == current_app.config["MISSION_CODE"]:
        return False
    try:
        if load_registry().get(code) is not None:
            return True
    except RegistryError:
        pass
    return (
        db.session.scalar(
            select(SyncOutbox.id).where(SyncOutbox.recipient_mission == code).limit(1)
        )
        is not None
    )
