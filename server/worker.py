"""The RQ worker CaseBridge runs: fork-safe database use and a periodic reconciler."""

from __future__ import annotations

import logging
from datetime import timedelta

from redis.exceptions import RedisError
from rq import Queue, SimpleWorker

from server.extensions import db

log = logging.getLogger(__name__)

RECONCILE_JOB_ID = "casebridge-reconcile"
RECONCILE_EVERY = timedelta(seconds=60)


class CaseBridgeWorker(SimpleWorker):
    """Runs jobs in its own process, without RQ's fork per job.

    A fork per job cost about 30 ms of CPU, more than the job itself (bench/submissions.py).
    Jobs are small, idempotent functions that commit once; each gets a clean session.
    """

    def perform_job(self, job, queue, execution) -> bool:
        db.session.remove()
        try:
            return super().perform_job(job, queue, execution)
        finally:
            db.session.remove()


def schedule_reconcile(queue: Queue) -> None:
    """Run the reconciler again in a minute; one pending run at most (a fixed job id)."""
    from server.submissions.jobs import reconcile_job

    try:
        queue.enqueue_in(RECONCILE_EVERY, reconcile_job, job_id=RECONCILE_JOB_ID)
    except (RedisError, OSError):
        log.warning("could not schedule the reconciler: Redis unreachable")
