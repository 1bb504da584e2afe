"""The RQ worker CaseBridge runs: fork-safe database use and a periodic reconciler."""

from __future__ import annotations

import logging
import traceback
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

    A failing job's traceback is logged and kept in Redis without exception messages:
    those can quote submitted values (a name, a birth date), RQ would keep them for a year.
    """

    def perform_job(self, job, queue, execution) -> bool:
        db.session.remove()
        try:
            return super().perform_job(job, queue, execution)
        finally:
            db.session.remove()

    def handle_exception(self, job, *exc_info) -> None:
        """RQ's log line, with frames and exception types only, and no job arguments."""
        redacted = redacted_traceback(exc_info[1])
        self._redacted_failures = {job.id: redacted}
        self.log.error("Worker %s: job %s raised an exception\n%s", self.name, job.id, redacted)
        from rq.job_lifecycle import call_exception_handlers

        call_exception_handlers(self._exc_handlers, job, *exc_info)

    def handle_job_failure(self, job, queue, *args, exc_string: str = "", **kwargs) -> None:
        """What RQ stores as the failure (job result, failed registry): the redacted text."""
        redacted = getattr(self, "_redacted_failures", {}).pop(job.id, None)
        super().handle_job_failure(job, queue, *args, exc_string=redacted or exc_string, **kwargs)


def redacted_traceback(error: BaseException | None) -> str:
    """A traceback with every message left out: where it failed and which exception types,
    the chained ones too. Enough to find the bug; nothing a person submitted."""
    parts = []
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        frames = "".join(traceback.format_tb(error.__traceback__))
        kind = f"{type(error).__module__}.{type(error).__qualname__}".removeprefix("builtins.")
        parts.append(f"Traceback (most recent call last):\n{frames}{kind} (message withheld)\n")
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return "\nWhile handling the exception above, another was raised:\n\n".join(reversed(parts))


def schedule_reconcile(queue: Queue) -> None:
    """Run the reconciler again in a minute; one pending run at most (a fixed job id)."""
    from server.submissions.jobs import reconcile_job

    try:
        queue.enqueue_in(RECONCILE_EVERY, reconcile_job, job_id=RECONCILE_JOB_ID)
    except (RedisError, OSError):
        log.warning("could not schedule the reconciler: Redis unreachable")
