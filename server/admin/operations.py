"""What an admin may do to a failed submission: try it again, or give up on it.

Neither deletes anything: a discarded submission keeps its XML and attachments and can be
read (and, later, re-processed) like any other. Each action is written to the audit trail
in its own transaction.
"""

from __future__ import annotations

import contextlib

from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import update

from server import audit
from server.extensions import db, queue, redis_connection
from server.submissions.models import Submission, SubmissionState
from server.submissions.queueing import enqueue


class NotFailed(Exception):
    """The submission is not failed (any more): someone else retried or discarded it."""


class SubmissionMissing(Exception):
    """No submission has this id."""


def retry_failed(submission_id: int, by_user_id: int, address: str | None = None) -> str:
    """Put a failed submission back on the queue; commits. Returns its state now:
    'queued', or 'received' if Redis is unreachable (the reconciler queues it later)."""
    submission = _failed(submission_id)
    _audit("submission.retry", submission, by_user_id, address)  # committed by enqueue
    _forget_failed_job(submission.job_id, delete=True)  # the next batch job takes it
    queued = enqueue(submission, from_states=(SubmissionState.FAILED,))
    db.session.expire(submission)
    if not queued and submission.state not in (SubmissionState.QUEUED, SubmissionState.RECEIVED):
        raise NotFailed(f"Submission {submission_id} is no longer failed.")
    return submission.state


def discard_failed(submission_id: int, by_user_id: int, address: str | None = None) -> None:
    """Mark a failed submission discarded: kept, never normalized, no longer listed as
    failed. The caller commits."""
    submission = _failed(submission_id)
    changed = db.session.execute(
        update(Submission)
        .where(Submission.id == submission_id, Submission.state == SubmissionState.FAILED)
        .values(state=SubmissionState.DISCARDED)
    ).rowcount
    if not changed:
        raise NotFailed(f"Submission {submission_id} is no longer failed.")
    _forget_failed_job(submission.job_id, delete=True)
    _audit("submission.discard", submission, by_user_id, address)


def _audit(action: str, submission: Submission, user_id: int, address: str | None) -> None:
    audit.record(
        action,
        user_id=user_id,
        object_type="submission",
        object_id=submission.id,
        address=address,
        details={"form_id": submission.form_id},
    )


def _failed(submission_id: int) -> Submission:
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        raise SubmissionMissing(f"No submission {submission_id}.")
    if submission.state != SubmissionState.FAILED:
        raise NotFailed(f"Submission {submission_id} is not failed (it is {submission.state}).")
    return submission


def _forget_failed_job(job_id: str | None, *, delete: bool) -> None:
    """Take the job out of RQ's failed registry, so its count matches the page; best effort."""
    if not job_id:
        return
    with contextlib.suppress(RedisError, OSError):
        queue("submissions").failed_job_registry.remove(job_id)
        if delete:
            with contextlib.suppress(NoSuchJobError):
                Job.fetch(job_id, connection=redis_connection()).delete()
