"""Delivery: send a peer its due outbox rows as signed batches, and record its acks.

A failed attempt (peer down, refusal, a change not acknowledged) waits
SYNC_RETRY_BASE_SECONDS * 2**(attempts - 1), capped at SYNC_RETRY_MAX_SECONDS; after
SYNC_MAX_ATTEMPTS the change is 'dead' and stays visible until an admin retries it
(`casebridge sync retry`). Each attempt signs a new batch (new nonce and timestamp), so
a retry is never a replay; the peer's change ids make a repeated change harmless.
Logs mission codes, counts and HTTP statuses, never payloads. An acknowledged change keeps
only the names of what it sent (`what_was_sent`), not the values.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import or_, select, update

from server import audit
from server.extensions import db, queue, redis_connection
from sync.keys import load_mission_key
from sync.models import SyncOutbox
from sync.registry import Mission, encrypted_or_local, load_registry
from sync.signing import BadReceipt, canonical_json, new_batch, sign_batch, verify_receipt

log = logging.getLogger(__name__)

#: Ack statuses that mean the peer has the change and needs it no more (see sync.apply);
#: `invalid` is not one: the change is sent again until it is dead.
DELIVERED = ("applied", "duplicate", "stale", "ignored")
#: Rows still to send: new ones and ones sent without an acknowledgement.
UNACKED = ("pending", "sent")
#: A delivery job in one of these states will look at the outbox anyway.
BUSY = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


class DeliveryFailed(Exception):
    """The peer did not take the batch: unreachable, or it answered with an error."""


@dataclass
class DeliveryReport:
    mission: str
    acked: int = 0
    failed: int = 0
    dead: int = 0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def deliver_pending(mission_code: str) -> DeliveryReport:
    """The RQ job: send `mission_code` its due changes, batch after batch, and commit.

    Stops at the first failed batch; the rows it held wait for their next attempt.
    """
    report = DeliveryReport(mission_code)
    peer = load_registry().get(mission_code)
    if peer is None or mission_code == current_app.config["MISSION_CODE"]:
        log.warning("sync: no registered peer %s; nothing delivered", mission_code)
        return report
    key = load_mission_key()
    while rows := _due(mission_code, current_app.config["SYNC_BATCH_SIZE"]):
        batch = new_batch(current_app.config["MISSION_CODE"], mission_code, _changes(rows))
        try:
            acks = post_batch(peer, sign_batch(batch, key))
        except DeliveryFailed as failure:
            for row in rows:
                _failed(row, str(failure), report)
            db.session.commit()
            log.warning("sync: batch to %s failed: %s", mission_code, failure)
            break
        for row in rows:
            status = acks.get(row.change_id)
            if status in DELIVERED:
                row.state, row.acked_at, row.last_error = "acked", _utcnow(), None
                row.payload = what_was_sent(row.payload)
                report.acked += 1
            else:
                row.state = "sent"
                _failed(
                    row, f"sent, answered {status}" if status else "sent, not acknowledged", report
                )
        db.session.commit()
    log.info(
        "sync: %s: %d acked, %d failed, %d dead",
        mission_code,
        report.acked,
        report.failed,
        report.dead,
    )
    return report


def what_was_sent(payload: dict) -> dict:
    """An acknowledged change's payload without its values: which fields and records went
    (for the admins and the audit), not what they said. The peer has the values now; a
    second copy of them here, kept for ever, would only be more personal data to lose."""
    case = payload.get("case") or {}
    return {
        "sent": {
            "fields": sorted(case.get("fields") or {}),
            "records": [
                {"dataset": record.get("dataset"), "fields": sorted(record.get("fields") or {})}
                for record in payload.get("records") or []
            ],
            "parts": sorted(set(payload) - {"case", "records"}),
        }
    }


def _due(mission_code: str, limit: int) -> list[SyncOutbox]:
    return list(
        db.session.scalars(
            select(SyncOutbox)
            .where(
                SyncOutbox.recipient_mission == mission_code,
                SyncOutbox.state.in_(UNACKED),
                or_(SyncOutbox.next_attempt_at.is_(None), SyncOutbox.next_attempt_at <= _utcnow()),
            )
            .order_by(SyncOutbox.id)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL: two jobs never send the same rows
        )
    )


def _changes(rows: list[SyncOutbox]) -> list[dict]:
    return [
        {
            "change_id": row.change_id,
            "case_uuid": row.case_uuid,
            "origin_mission": row.origin_mission,
            "version": row.version,
            "kind": row.kind,
            "payload": row.payload,
        }
        for row in rows
    ]


def _failed(row: SyncOutbox, reason: str, report: DeliveryReport) -> None:
    config = current_app.config
    row.attempts += 1
    row.last_error = reason[:500]
    if row.attempts >= config["SYNC_MAX_ATTEMPTS"]:
        row.state, row.next_attempt_at = "dead", None
        report.dead += 1
        return
    delay = min(
        config["SYNC_RETRY_BASE_SECONDS"] * 2 ** (row.attempts - 1),
        config["SYNC_RETRY_MAX_SECONDS"],
    )
    row.next_attempt_at = _utcnow() + dt.timedelta(seconds=delay)
    report.failed += 1


def post_batch(peer: Mission, envelope: dict) -> dict[str, str]:
    """POST the envelope to the peer's inbox; its acks by change id, from its signed
    receipt for this batch (sync.signing.verify_receipt). Raises DeliveryFailed,
    also without sending for a base URL that is neither https nor this machine (a
    registry edited by hand: `casebridge missions add` refuses one)."""
    if not encrypted_or_local(peer.base_url):
        raise DeliveryFailed("not sent: the peer's base URL is plain http to another host")
    request = urllib.request.Request(  # noqa: S310 - registry URLs are http(s) only
        f"{peer.base_url}/sync/v1/inbox",
        data=canonical_json(envelope),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    timeout = current_app.config["SYNC_HTTP_TIMEOUT_SECONDS"]
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            raise DeliveryFailed(f"HTTP {error.code} {_error_code(error.read())}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryFailed(f"unreachable: {reason}") from None
    except ValueError:
        raise DeliveryFailed("the answer is not JSON") from None
    try:
        acks = verify_receipt(answer, peer.code, envelope["batch"]["nonce"], peer.verifying_key())
    except BadReceipt as error:
        raise DeliveryFailed(str(error)) from None
    return {str(a.get("change_id")): str(a.get("status")) for a in acks if isinstance(a, dict)}


def _error_code(body: bytes) -> str:
    """The inbox's error code ("replayed"), if the body is one of its refusals."""
    try:
        return str(json.loads(body).get("error", ""))[:64]
    except (ValueError, AttributeError):
        return ""


def delivery_job_id(mission_code: str) -> str:
    return f"casebridge-sync-deliver-{mission_code}"


def enqueue_delivery(mission_code: str) -> bool:
    """Queue a delivery job for one peer unless one is waiting or running; True if queued.

    One job per peer at a time: two would send the same rows (on SQLite nothing locks
    them), and the second batch would be refused as a concurrent delivery.
    """
    job_id = delivery_job_id(mission_code)
    try:
        status = Job.fetch(job_id, connection=redis_connection()).get_status()
    except NoSuchJobError:
        status = None
    if status in BUSY:
        return False
    queue("default").enqueue(
        deliver_pending,
        mission_code,
        job_id=job_id,
        description=f"sync delivery to {mission_code}",
        result_ttl=60,
    )
    return True


def wake_deliveries(mission_codes: set[str]) -> None:
    """Queue a delivery to each of these peers now, after a commit that gave them changes:
    lag in seconds instead of up to a poll interval (bench/ROUTING.md). Best effort: a peer
    whose delivery is already running, or Redis being away, leaves the rows to the sync
    process's next tick. Off (SYNC_DELIVER_ON_COMMIT) only the poll sends."""
    if not current_app.config["SYNC_DELIVER_ON_COMMIT"]:
        return
    for mission_code in sorted(mission_codes):
        try:
            enqueue_delivery(mission_code)
        except (RedisError, OSError):
            log.warning("sync: could not queue a delivery to %s now; the poll will", mission_code)
            return


def enqueue_due_deliveries() -> list[str]:
    """Queue a delivery for each peer with changes due; the peers, by code.

    What the sync process (`casebridge sync run`, sync.scheduler) calls every few seconds.
    """
    due = db.session.scalars(
        select(SyncOutbox.recipient_mission)
        .where(
            SyncOutbox.state.in_(UNACKED),
            or_(SyncOutbox.next_attempt_at.is_(None), SyncOutbox.next_attempt_at <= _utcnow()),
        )
        .distinct()
        .order_by(SyncOutbox.recipient_mission)
    ).all()
    for mission_code in due:
        enqueue_delivery(mission_code)
    return list(due)


def retry_dead(
    mission_code: str | None = None,
    *,
    by_user_id: int | None = None,
    address: str | None = None,
    via: str = "cli",
) -> int:
    """An admin's retry: dead changes become pending again with a fresh attempt count.

    Audited (`sync.retry`, the peer and the count) in the caller's transaction, which
    commits; the sync process then finds them due.
    """
    statement = (
        update(SyncOutbox)
        .where(SyncOutbox.state == "dead")
        .values(state="pending", attempts=0, next_attempt_at=None)
    )
    if mission_code is not None:
        statement = statement.where(SyncOutbox.recipient_mission == mission_code)
    count = db.session.execute(statement).rowcount
    audit.record(
        "sync.retry",
        user_id=by_user_id,
        object_type="mission",
        object_id=mission_code or "all",
        address=address,
        details={"changes": count, "via": via},
    )
    return count
