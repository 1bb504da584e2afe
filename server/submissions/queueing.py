"""The submission queue: the database holds what waits, Redis only says "there is work".

A received submission is committed as `queued` with no job. `wake()` makes sure one batch
job (`jobs.normalize_queued`) is on the queue; that job claims the next waiting rows by
writing its job id on them, normalizes them in one transaction, and wakes another job when
it found a full batch, so every worker process gets a share. One job per ~100 submissions
instead of one per submission: RQ's own bookkeeping cost more than normalizing did
(bench/CASES.md).

A submission the batch cannot finish (its case not known yet, or an error) is handed to a
job of its own (`jobs.process_submission`, retried with backoff; its row names that job).
The reconciler puts back whatever a lost job held: Redis flushed, a worker killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass

from flask import Flask, current_app
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy import bindparam, func, select, update

from server.extensions import db, queue, redis_connection
from server.submissions.models import Submission, SubmissionState

log = logging.getLogger(__name__)

WAITING_STATES = (SubmissionState.RECEIVED, SubmissionState.QUEUED)
#: Set while a batch job is on the queue and not started yet; expires in case it is lost.
WAKE_KEY = "casebridge:normalize:woken"
WAKE_TTL_S = 30

_SUBMISSIONS = Submission.__table__


@dataclass(frozen=True)
class SubmissionKey:
    """What identifies a submission without its row id: known before any INSERT."""

    form_id: int
    instance_id: str

    @property
    def job_id(self) -> str:
        """The id of this submission's own job (never the instanceID: it is in logs)."""
        digest = hashlib.sha256(f"{self.form_id}:{self.instance_id}".encode()).hexdigest()
        return f"submission-{digest[:32]}"


def key_of(submission: Submission) -> SubmissionKey:
    return SubmissionKey(submission.form_id, submission.instance_id)


def mark_queued(submission: Submission) -> SubmissionKey:
    """Let the next batch take it (the caller commits, then wakes)."""
    submission.state = SubmissionState.QUEUED
    submission.job_id = None
    return key_of(submission)


# ---- waking the batch job -------------------------------------------------------------


def wake(*, gather: bool = True) -> bool:
    """Make sure a batch job will look at the waiting submissions; False if Redis is down.

    Costs one Redis command when a batch job is already waiting (the usual case under load).
    A job woken by arrivals first waits `NORMALIZE_GATHER_MS` for more of them (one job per
    arrival would cost more in RQ than normalizing does); one woken by a full batch, with
    more already waiting, does not.
    """
    from server.submissions.jobs import normalize_queued

    try:
        if not redis_connection().set(WAKE_KEY, 1, nx=True, ex=WAKE_TTL_S):
            return True  # a batch job is on the queue and has not claimed yet
        intervals = current_app.config["JOB_RETRY_INTERVALS"]
        gather_s = current_app.config["NORMALIZE_GATHER_MS"] / 1000 if gather else 0.0
        queue("submissions").enqueue(
            normalize_queued,
            gather_s,
            description="normalize waiting submissions",
            result_ttl=60,
            retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
        )
    except (RedisError, OSError):
        log.warning("submissions wait in the database: Redis unreachable")
        return False
    return True


def wake_after_commit(key: SubmissionKey) -> None:
    """A received submission was committed: make sure a batch job will take it.

    With WAKE_IN_BACKGROUND (the default) this process's Waker does it after the response,
    so the phone's 201 never waits for Redis; otherwise here, now (as tests want it).
    """
    if not current_app.config["WAKE_IN_BACKGROUND"]:
        if not wake():
            mark_received(key)
            db.session.commit()
        return
    waker = current_app.extensions.get("casebridge_waker")
    if waker is None:
        waker = current_app.extensions.setdefault(
            "casebridge_waker", Waker(current_app._get_current_object())
        )
    waker.add(key)


class Waker:
    """Wakes the batch job from a thread of the web process, once the request committed.

    A Redis round trip was an eighth of a submission's time, paid while the phone waited.
    Each commit hands in its key and sets a flag; the thread's next `wake()` comes after
    that commit, so no submission is left without a job, and commits arriving within
    WAKE_GATHER_MS share one (a wake per submission cost a tenth of the web process's CPU
    under load; the batch job gathers for longer anyway). If Redis is unreachable the keys
    are marked received, as a wake in the request did, for the reconciler; a process that
    dies before its thread ran leaves them queued with no job, which the reconciler (every
    minute) also wakes for.
    """

    def __init__(self, app: Flask):
        self._app = app
        self._lock = threading.Lock()
        self._keys: list[SubmissionKey] = []
        self._pending = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def add(self, key: SubmissionKey) -> None:
        with self._lock:
            self._keys.append(key)
            self._idle.clear()
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()  # a forked web worker starts its own thread
                self._thread = threading.Thread(
                    target=self._run, name="casebridge-waker", daemon=True
                )
                self._thread.start()
        self._pending.set()

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every key handed in was woken for; False on timeout."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        gather_s = self._app.config["WAKE_GATHER_MS"] / 1000
        while True:
            self._pending.wait()
            time.sleep(gather_s)  # commits arriving meanwhile share this wake
            self._pending.clear()
            with self._lock:
                keys, self._keys = self._keys, []
            if keys:
                self._wake(keys)
            with self._lock:
                if not self._keys:
                    self._idle.set()

    def _wake(self, keys: list[SubmissionKey]) -> None:
        with self._app.app_context():
            try:
                if not wake():
                    for key in keys:
                        mark_received(key)
                    db.session.commit()
            except Exception:  # the thread must live on; the reconciler wakes for these
                log.exception("waking the submission queue failed")
            finally:
                db.session.remove()


def clear_wake() -> None:
    """Called by a batch job before it claims: anything committed from now on wakes anew."""
    with contextlib.suppress(RedisError, OSError):  # else it expires by itself
        redis_connection().delete(WAKE_KEY)


def claim(job_id: str, limit: int) -> list[int]:
    """Write `job_id` on up to `limit` waiting submissions, oldest first; commit; their ids.

    A retried job takes back what its failed attempt held.

    On PostgreSQL concurrent claims skip each other's rows (SKIP LOCKED); SQLite runs one
    writer at a time, so its UPDATE is atomic anyway.
    """
    waiting = (
        select(_SUBMISSIONS.c.id)
        .where(
            _SUBMISSIONS.c.state == SubmissionState.QUEUED.value,
            _SUBMISSIONS.c.job_id.is_(None) | (_SUBMISSIONS.c.job_id == job_id),
        )
        .order_by(_SUBMISSIONS.c.id)
        .limit(limit)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        waiting = waiting.with_for_update(skip_locked=True)
    ids = db.session.scalars(
        update(_SUBMISSIONS)
        .where(_SUBMISSIONS.c.id.in_(waiting.scalar_subquery()))
        .values(job_id=job_id)
        .returning(_SUBMISSIONS.c.id)
    ).all()
    db.session.commit()
    return sorted(ids)


def hand_over(submission_ids: list[int]) -> int:
    """Give each submission a job of its own (with retries): the batch could not finish it.

    Commits; a submission whose job cannot be pushed waits for the reconciler.
    """
    if not submission_ids:
        return 0
    rows = db.session.execute(
        select(_SUBMISSIONS.c.id, _SUBMISSIONS.c.form_id, _SUBMISSIONS.c.instance_id).where(
            _SUBMISSIONS.c.id.in_(submission_ids),
            _SUBMISSIONS.c.state.in_([s.value for s in WAITING_STATES]),
        )
    ).all()
    keys = {row.id: SubmissionKey(row.form_id, row.instance_id) for row in rows}
    if keys:
        db.session.execute(
            update(_SUBMISSIONS)
            .where(_SUBMISSIONS.c.id == bindparam("row_id"))
            .values(state=SubmissionState.QUEUED.value, job_id=bindparam("new_job_id")),
            [{"row_id": i, "new_job_id": k.job_id} for i, k in keys.items()],
        )
    db.session.commit()
    pushed = 0
    for key in keys.values():
        if push(key):
            pushed += 1
        else:
            mark_received(key)
            db.session.commit()
    return pushed


def push(key: SubmissionKey) -> bool:
    """Put a submission's own job on the queue; False (and no harm) if Redis is down."""
    from server.submissions.jobs import process_submission

    try:
        intervals = current_app.config["JOB_RETRY_INTERVALS"]
        with redis_connection().pipeline() as pipe:  # one round trip instead of two
            queue("submissions").enqueue(
                process_submission,
                key.form_id,
                key.instance_id,
                job_id=key.job_id,
                # Not rq's default (the call with its arguments): no instanceID in the
                # worker's log lines.
                description=f"submission of form {key.form_id}",
                retry=Retry(max=len(intervals), interval=intervals) if intervals else None,
                pipeline=pipe,
            )
            pipe.execute()
    except (RedisError, OSError):
        log.warning("a submission of form %s stays 'received': Redis unreachable", key.form_id)
        return False
    return True


def mark_received(key: SubmissionKey) -> None:
    """The queue was unreachable after the commit: say so, for the reconciler and admins.

    Only while no job holds it: a batch job woken by another submission may have claimed
    (or finished) it since the commit."""
    db.session.execute(
        update(Submission)
        .where(
            Submission.form_id == key.form_id,
            Submission.instance_id == key.instance_id,
            Submission.state == SubmissionState.QUEUED,
            Submission.job_id.is_(None),
        )
        .values(state=SubmissionState.RECEIVED, job_id=None)
    )


def enqueue(submission: Submission, from_states: tuple[str, ...] = WAITING_STATES) -> bool:
    """Queue an already-committed submission in one of `from_states` again (key unlocking
    re-queues submissions that waited for their key; admins retry failed ones).

    The row says 'queued' (committed) before the wake, so a worker that finishes first is
    never overwritten by this commit; if Redis is down it says 'received' again.
    """
    requeued = db.session.execute(
        update(Submission)
        .where(Submission.id == submission.id, Submission.state.in_(from_states))
        .values(state=SubmissionState.QUEUED, job_id=None)
    ).rowcount
    db.session.commit()
    if not requeued:
        return False  # finished meanwhile
    if not wake():
        mark_received(key_of(submission))
        db.session.commit()
        return False
    return True


# ---- the reconciler -------------------------------------------------------------------


def reconcile(limit: int = 10_000) -> int:
    """Put back what the queue lost, and wake a batch job if anything waits; how many wait.

    Lost: 'received' rows (Redis was down), and 'queued' rows held by a job that is gone,
    failed without saying so, or was running in a worker that died (SIGKILL, power cut).
    Re-running is safe: a submission changes its case once.
    """
    received = db.session.scalars(
        select(_SUBMISSIONS.c.id)
        .where(_SUBMISSIONS.c.state == SubmissionState.RECEIVED.value)
        .order_by(_SUBMISSIONS.c.id)
        .limit(limit)
    ).all()
    held_by = db.session.scalars(
        select(_SUBMISSIONS.c.job_id)
        .where(
            _SUBMISSIONS.c.state == SubmissionState.QUEUED.value,
            _SUBMISSIONS.c.job_id.is_not(None),
        )
        .distinct()
    ).all()
    if received:
        _requeue(_SUBMISSIONS.c.id.in_(received), SubmissionState.RECEIVED)
    for job_id in held_by:
        if _job_lost(job_id):
            _requeue(_SUBMISSIONS.c.job_id == job_id, SubmissionState.QUEUED)
    db.session.commit()
    waiting = db.session.scalar(
        select(func.count()).where(
            _SUBMISSIONS.c.state == SubmissionState.QUEUED.value,
            _SUBMISSIONS.c.job_id.is_(None),
        )
    )
    if waiting:
        wake()
    return waiting


def _requeue(which, state: SubmissionState) -> int:
    return db.session.execute(
        update(_SUBMISSIONS)
        .where(which, _SUBMISSIONS.c.state == state.value)
        .values(state=SubmissionState.QUEUED.value, job_id=None)
    ).rowcount


def _job_lost(job_id: str) -> bool:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        job = Job.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        return True
    status = job.get_status(refresh=False)
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return False
    if status == JobStatus.STARTED:
        return not _worker_alive(job.worker_name)
    return True  # finished, failed, stopped or canceled while the row still says 'queued'


def _worker_alive(name: str | None) -> bool:
    """Is the worker running? RQ forgets a dead worker only minutes later; on this host we
    can ask the operating system about its process at once."""
    from rq import Worker

    if not name:
        return False
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, redis_connection())
    if worker is None:
        return False
    if worker.hostname != socket.gethostname() or not worker.pid:
        return True  # another machine's worker: trust RQ's own expiry
    try:
        os.kill(worker.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
