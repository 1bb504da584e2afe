"""The RQ worker CaseBridge runs: fork-safe database use and a periodic reconciler."""

from __future__ import annotations

import logging
from datetime import timedelta

from redis.exceptions import RedisError
from rq import Queue, Worker

from server.extensions import db

log = logging.getLogger(__name__)

RECONCILE_JOB_ID = "casebridge-reconcile"
RECONCILE_EVERY = timedelta(seconds=60)


class CaseBridgeWorker(Worker):
    """RQ forks a work horse per job; the horse must not share the parent's DB connections."""

    def main_work_horse(self, job, queue):
        db.engine.dispose(close=False)  # keep the parent's sockets, open new ones here
        db.session.remove()
        super().main_work_horse(job, queue)


def schedule_reconcile(queue: Queue) -> None:
    """Run the reconciler again in a minute; one pending run at most (a fixed job id)."""
    from server.submissions.jobs import reconcile_job

    try:
        queue.enqueue_in(RECONCILE_EVERY, reconcile_job, job_id=RECONCILE_JOB_ID)
    except (RedisError, OSError):
        log.warning("could not schedule the reconciler: Redis unreachable")
