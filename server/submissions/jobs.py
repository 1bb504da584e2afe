"""Queue jobs for submissions. Small functions: load by id, call operations, commit once."""

from __future__ import annotations

import logging

from rq import get_current_job
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import joinedload, undefer

from server.cases.operations import CaseNotYetKnown, normalize, record_outcome
from server.extensions import db
from server.forms.models import FormDef
from server.submissions.models import Submission, SubmissionState

log = logging.getLogger(__name__)

DONE = {SubmissionState.NORMALIZED, SubmissionState.NEEDS_REVIEW}


def process_submission(form_id: int, instance_id: str) -> str:
    """Normalize one submission into the case schema, once.

    Keyed by (form, instanceID): a second run of a finished job changes nothing, and a run
    cut short (killed worker, database error) rolled back, so the retry starts clean.
    Logs ids, never values.
    """
    submission = _load(form_id, instance_id)
    if submission is None:
        log.warning("a submission of form %s vanished before processing", form_id)
        return "missing"
    if submission.state in DONE:
        return submission.state
    submission_id = submission.id
    job = get_current_job()
    try:
        outcome = normalize(
            submission,
            submission.form_def.case_mapping,
            wait_for_case=job is not None and bool(job.retries_left),
        )
        state = record_outcome(submission, outcome)
        db.session.flush()
        case_id = submission.case_id  # read now: nothing is reloaded after the commit
        db.session.commit()
    except CaseNotYetKnown:
        db.session.rollback()
        log.info("submission %s waits for the case it updates; will retry", submission_id)
        raise
    except Exception as error:
        db.session.rollback()
        _record_failure(submission_id, error)
        raise
    log.info("submission %s (form %s) %s, case %s", submission_id, form_id, state, case_id)
    return state


def _load(form_id: int, instance_id: str) -> Submission | None:
    """The submission with what normalizing it reads, in one query."""
    return db.session.scalar(
        select(Submission)
        .where(Submission.form_id == form_id, Submission.instance_id == instance_id)
        .options(
            undefer(Submission.xml),
            joinedload(Submission.form),
            joinedload(Submission.form_def).load_only(FormDef.case_mapping),
        )
    )


def _record_failure(submission_id: int, error: Exception) -> None:
    """Say why on the row; on the last attempt, mark it failed so admins see it."""
    job = get_current_job()
    last_attempt = job is None or not job.retries_left
    summary = _describe(error)
    try:
        row = db.session.get(Submission, submission_id)
        row.problem = summary
        if last_attempt:
            row.state = SubmissionState.FAILED
        db.session.commit()
    except Exception:  # noqa: BLE001 - the database may be what failed; the job error stands
        db.session.rollback()
        log.exception("could not record the failure of submission %s", submission_id)
    log.warning(
        "submission %s failed (%s)%s",
        submission_id,
        type(error).__name__,
        "" if last_attempt else "; will retry",
    )


def _describe(error: Exception) -> str:
    """An error for admins: its kind only. Messages can carry submitted values."""
    if isinstance(error, StatementError):
        return f"Database error ({type(error.orig or error).__name__}); the job will be retried."
    return f"{type(error).__name__} while normalizing; see the worker log."


def reconcile_job() -> int:
    """Re-enqueue submissions the queue lost, then come back in a minute."""
    from server.extensions import queue
    from server.submissions.operations import reconcile
    from server.worker import schedule_reconcile

    enqueued = reconcile()
    schedule_reconcile(queue("default"))
    return enqueued
