"""Queue jobs for submissions. Small functions: load, call operations, commit once.

`normalize_queued` is the usual path: a batch of waiting submissions in one transaction
(see server.submissions.queueing). `process_submission` normalizes one submission, with
retries: for what a batch handed over, and for the reconciler's single re-runs.
"""

from __future__ import annotations

import logging
import time
import uuid

from flask import current_app
from rq import get_current_job
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import OperationalError, StatementError
from sqlalchemy.orm import joinedload, selectinload, undefer

from server.cases.operations import (
    CaseNotYetKnown,
    KnownRecords,
    normalize,
    read,
    record_outcome,
    write_created,
)
from server.extensions import db
from server.forms.models import FormDef
from server.submissions.models import Submission, SubmissionState
from sync.delivery import wake_deliveries
from sync.linkage_store import current_linkage
from sync.outbox import record_normalization
from sync.registry import load_registry

log = logging.getLogger(__name__)

DONE = {SubmissionState.NORMALIZED, SubmissionState.NEEDS_REVIEW}


def normalize_queued(gather_s: float = 0.0) -> int:
    """Claim the next batch of waiting submissions and normalize them in one transaction.

    `gather_s`: wait that long first, so that submissions arriving one by one are taken
    together (new arrivals meanwhile do not wake another job).

    A full batch wakes another job first, so that the other worker processes help. A
    submission whose case is not known yet is handed to a job of its own (retried with
    backoff); if the batch fails as a whole, it is rolled back and every submission in it
    gets a job of its own, so one bad submission fails alone. A database error is not a
    submission's fault: it fails the job, which RQ retries with backoff, whole.
    """
    from server.submissions import queueing

    job = get_current_job()
    job_id = job.id if job is not None else f"inline-{uuid.uuid4()}"
    limit = current_app.config["NORMALIZE_BATCH_SIZE"]
    if gather_s > 0:
        time.sleep(gather_s)
    queueing.clear_wake()
    try:
        claimed = queueing.claim(job_id, limit)
    except OperationalError:
        db.session.rollback()
        log.warning("could not claim waiting submissions (database error); will retry")
        raise
    if not claimed:
        return 0
    if len(claimed) == limit:
        queueing.wake(gather=False)  # more are waiting: no need to gather
    try:
        waiting_for_case = _normalize_batch(claimed, bulk=True)
        if waiting_for_case:  # e.g. a follow-up of a case made in the first pass
            waiting_for_case = _normalize_batch(waiting_for_case, bulk=False)
    except OperationalError:
        db.session.rollback()
        log.warning("a batch of %d submissions hit a database error; will retry", len(claimed))
        raise
    except Exception as error:
        db.session.rollback()
        log.warning(
            "a batch of %d submissions failed (%s); each gets a job of its own",
            len(claimed),
            type(error).__name__,
        )
        queueing.hand_over(claimed)
        return 0
    if waiting_for_case:
        log.info(
            "%d submission(s) wait for the case they update; each gets a job of its own",
            len(waiting_for_case),
        )
        queueing.hand_over(waiting_for_case)
    done = len(claimed) - len(waiting_for_case)
    log.info("normalized a batch of %d submissions", done)
    return done


def _normalize_batch(submission_ids: list[int], *, bulk: bool) -> list[int]:
    """Read every submission, fetch the records they name at once, apply, commit once;
    the ids of those whose case is not known yet. In `bulk` mode new cases are written
    with multi-row INSERTs, and a submission that changes one of them waits for the next
    pass."""
    submissions = [s for s in _load_many(submission_ids) if s.state not in DONE]
    found = {s.id: read(s, s.form_def.case_mapping) for s in submissions}
    known = KnownRecords(bulk=bulk)
    known.prefetch([r.values for r in found.values() if r.values is not None])
    known.prefetch_applied([s.id for s in submissions])
    waiting_for_case, outcomes = [], []
    for submission in submissions:
        try:
            outcome = normalize(
                submission,
                submission.form_def.case_mapping,
                wait_for_case=True,
                known=known,
                read_first=found[submission.id],
            )
        except CaseNotYetKnown:
            waiting_for_case.append(submission.id)
            continue
        record_outcome(submission, outcome)
        outcome.submission = submission
        outcomes.append(outcome)
    # Without autoflush: the first INSERT would otherwise write every submission's outcome
    # row by row through the unit of work, and _write_outcomes would write it again.
    with db.session.no_autoflush:
        write_created(known)
        if bulk:
            _write_outcomes([o.submission for o in outcomes])
    db.session.flush()  # new cases get their ids; then the sync outbox, same transaction
    registry, linkage = load_registry(), current_linkage()
    recipients = {
        row.recipient_mission
        for outcome in outcomes
        for row in record_normalization(db.session, outcome, registry=registry, linkage=linkage)
    }
    db.session.commit()
    wake_deliveries(recipients)
    return waiting_for_case


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
        routed = record_normalization(db.session, outcome)  # the sync outbox, same transaction
        case_id = submission.case_id  # read now: nothing is reloaded after the commit
        db.session.commit()
        wake_deliveries({row.recipient_mission for row in routed})
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


_WRITE_OUTCOME = (
    update(Submission.__table__)
    .where(Submission.__table__.c.id == bindparam("row_id"))
    .values(
        state=bindparam("new_state"),
        problems=bindparam("new_problems"),
        problem=bindparam("new_problem"),
        case_id=bindparam("new_case_id"),
        updated_at=func.now(),
    )
)


def _write_outcomes(submissions: list[Submission]) -> None:
    """Each submission's state, problems and case in one executemany UPDATE; the objects
    leave the session so that the flush does not write them again, row by row."""
    if not submissions:
        return
    rows = [
        {
            "row_id": s.id,
            "new_state": str(s.state),
            "new_problems": s.problems,
            "new_problem": s.problem,
            "new_case_id": s.case_id,
        }
        for s in submissions
    ]
    for submission in submissions:
        db.session.expunge(submission)
    db.session.execute(_WRITE_OUTCOME, rows)


def _load_many(submission_ids: list[int]) -> list[Submission]:
    return db.session.scalars(
        select(Submission)
        .where(Submission.id.in_(submission_ids))
        .order_by(Submission.id)
        .options(
            undefer(Submission.xml),
            joinedload(Submission.form),
            # Once per form definition, not once per row: the mapping is a large JSON.
            selectinload(Submission.form_def).load_only(FormDef.case_mapping),
        )
    ).all()


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
    from server.submissions.queueing import reconcile
    from server.worker import schedule_reconcile

    enqueued = reconcile()
    schedule_reconcile(queue("default"))
    return enqueued
