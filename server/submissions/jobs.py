"""Queue jobs for submissions. Small functions: load by id, call operations, commit once."""

from __future__ import annotations

import logging

from server.extensions import db
from server.submissions.operations import find_submission

log = logging.getLogger(__name__)


def process_submission(form_id: int, instance_id: str) -> str:
    """For now, record that the worker received the submission (normalization comes next).

    Keyed by (form, instanceID), so running it twice is harmless. Logs row ids only, never
    personal data.
    """
    submission = find_submission(form_id, instance_id)
    if submission is None:
        log.warning("a submission of form %s vanished before processing", form_id)
        return "missing"
    log.info("submission %s (form %s) taken from the queue", submission.id, submission.form_id)
    db.session.commit()
    return submission.state


def reconcile_job() -> int:
    """Re-enqueue submissions the queue lost, then come back in a minute."""
    from server.extensions import queue
    from server.submissions.operations import reconcile
    from server.worker import schedule_reconcile

    enqueued = reconcile()
    schedule_reconcile(queue("default"))
    return enqueued
