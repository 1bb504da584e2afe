"""What the queue page shows: how much waits, who works on it, what failed.

Plain functions returning dataclasses, testable without HTTP. They read ids, states, counts
and error kinds only: nothing a person submitted. Redis may be down; the database half of
the status is still worth showing then, so every Redis read degrades to `redis_ok=False`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from sqlalchemy import func, select

from server.extensions import QUEUE_NAMES, db, redis_connection
from server.forms.models import Form
from server.projects.models import Project
from server.submissions.models import SUBMISSION_STATES, Submission, SubmissionState
from server.submissions.queueing import WAITING_STATES

#: The chart covers this many minutes, one bar each, the current minute last.
CHART_MINUTES = 60
#: Longest list of failed (or needs-review) submissions shown; the total is counted apart.
LIST_LIMIT = 50


@dataclass(frozen=True)
class QueueDepth:
    name: str
    waiting: int  #: jobs on the queue, not yet taken by a worker
    running: int
    scheduled: int  #: retries waiting for their time (JOB_RETRY_INTERVALS)
    failed: int  #: in RQ's failed registry


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    state: str
    queues: list[str]
    #: What the current job is, never its arguments (see `_job_summary`).
    current_job: str | None
    seconds_since_heartbeat: int | None


@dataclass(frozen=True)
class MinuteCount:
    minute: str  #: "HH:MM" on the database's clock
    count: int


@dataclass(frozen=True)
class FormStateCounts:
    form_id: int
    xml_form_id: str
    project_name: str
    counts: dict[str, int]
    total: int


@dataclass(frozen=True)
class WaitingSubmission:
    submission_id: int
    xml_form_id: str
    state: str
    age_seconds: int


@dataclass(frozen=True)
class AttentionSubmission:
    """A failed or needs-review submission: its id, form and what went wrong, no values."""

    submission_id: int
    xml_form_id: str
    state: str
    received_at: str
    #: Failed: the error kind recorded by the job (e.g. "RuntimeError while normalizing").
    problem: str | None
    #: Needs review: the case fields that need a look (names only; messages can hold values).
    problem_fields: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class QueueStatus:
    as_of: str
    redis_ok: bool
    queues: list[QueueDepth]
    workers: list[WorkerStatus]
    per_minute: list[MinuteCount]
    by_form: list[FormStateCounts]
    oldest_waiting: WaitingSubmission | None
    failed: list[AttentionSubmission]
    failed_total: int
    needs_review: list[AttentionSubmission]
    needs_review_total: int
    states: tuple[str, ...] = SUBMISSION_STATES

    @property
    def per_minute_max(self) -> int:
        return max((m.count for m in self.per_minute), default=0)

    @property
    def per_minute_total(self) -> int:
        return sum(m.count for m in self.per_minute)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {
            "per_minute_max": self.per_minute_max,
            "per_minute_total": self.per_minute_total,
        }


def queue_status() -> QueueStatus:
    """Everything the queue page shows, read now."""
    now = database_now()
    try:
        connection = redis_connection()
        queues = [queue_depth(Queue(name, connection=connection)) for name in QUEUE_NAMES]
        workers = workers_alive(connection)
        redis_ok = True
    except (RedisError, OSError):
        queues, workers, redis_ok = [], [], False
    failed, failed_total = attention(SubmissionState.FAILED)
    review, review_total = attention(SubmissionState.NEEDS_REVIEW)
    return QueueStatus(
        as_of=now.strftime("%Y-%m-%d %H:%M:%S"),
        redis_ok=redis_ok,
        queues=queues,
        workers=workers,
        per_minute=submissions_per_minute(now),
        by_form=states_by_form(),
        oldest_waiting=oldest_waiting(now),
        failed=failed,
        failed_total=failed_total,
        needs_review=review,
        needs_review_total=review_total,
    )


def database_now() -> datetime:
    """The database's clock, which stamped created_at (naive, as the column is)."""
    now = db.session.scalar(select(func.now()))
    return now.replace(tzinfo=None, microsecond=0)


def queue_depth(queue: Queue) -> QueueDepth:
    return QueueDepth(
        name=queue.name,
        waiting=queue.count,
        running=queue.started_job_registry.count,
        scheduled=queue.scheduled_job_registry.count,
        failed=queue.failed_job_registry.count,
    )


def workers_alive(connection) -> list[WorkerStatus]:
    """Workers registered in Redis (RQ forgets one whose heartbeat stopped)."""
    now = datetime.now(UTC)
    workers = []
    for worker in sorted(Worker.all(connection=connection), key=lambda w: w.name):
        heartbeat = worker.last_heartbeat
        workers.append(
            WorkerStatus(
                name=worker.name,
                state=_known(worker.get_state()),
                queues=worker.queue_names(),
                current_job=_job_summary(worker),
                seconds_since_heartbeat=(
                    max(0, int((now - heartbeat).total_seconds())) if heartbeat else None
                ),
            )
        )
    return workers


def _known(state) -> str:
    """RQ says "?" for a worker that has not said what it is doing yet."""
    return str(state) if state and state != "?" else "unknown"


def _job_summary(worker: Worker) -> str | None:
    """The running job's function name, and its description when we wrote it.

    RQ's default description is the call with its arguments ("f('uuid:...')"), which can
    name a submission or a person: shown only when it is not that default.
    """
    try:
        job = _current_job(worker)
    except (RedisError, OSError, ValueError, LookupError):
        return None
    if job is None:
        return None
    name = (job.func_name or "job").rsplit(".", 1)[-1]
    description = job.description or ""
    if not description or description.startswith(job.func_name or "\0"):
        return name
    return f"{name}: {description}"


def _current_job(worker: Worker) -> Job | None:
    """What a worker seen from outside runs: RQ 3 keeps it as executions in Redis (the
    worker object's own current job is known only inside the worker's process)."""
    if not hasattr(worker, "get_current_executions"):  # RQ 2
        return worker.get_current_job()
    for execution in worker.get_current_executions():
        with contextlib.suppress(NoSuchJobError):
            return Job.fetch(execution.job_id, connection=worker.connection)
    return None


def submissions_per_minute(now: datetime, minutes: int = CHART_MINUTES) -> list[MinuteCount]:
    """Submissions received per minute over the last `minutes`, oldest first, zeros kept."""
    first = now.replace(second=0) - timedelta(minutes=minutes - 1)
    minute = _minute_of(Submission.created_at)
    counted = dict(
        db.session.execute(
            select(minute, func.count()).where(Submission.created_at >= first).group_by(minute)
        ).all()
    )
    keys = [first + timedelta(minutes=i) for i in range(minutes)]
    return [
        MinuteCount(key.strftime("%H:%M"), counted.get(key.strftime("%Y-%m-%d %H:%M"), 0))
        for key in keys
    ]


def _minute_of(column):
    """The column's minute as "YYYY-MM-DD HH:MM", in this database's dialect."""
    if db.engine.dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM-DD HH24:MI")
    return func.strftime("%Y-%m-%d %H:%M", column)


def states_by_form() -> list[FormStateCounts]:
    """How many submissions of each form are in each state; forms without any left out.

    Counted on submissions alone (ix_submissions_form_state covers it), names looked up after.
    """
    counted: dict[int, dict[str, int]] = {}
    for form_id, state, count in db.session.execute(
        select(Submission.form_id, Submission.state, func.count()).group_by(
            Submission.form_id, Submission.state
        )
    ):
        counted.setdefault(form_id, dict.fromkeys(SUBMISSION_STATES, 0))[state] = count
    names = db.session.execute(
        select(Form.id, Form.xml_form_id, Project.name)
        .join(Project, Project.id == Form.project_id)
        .where(Form.id.in_(counted))
        .order_by(Project.name, Form.xml_form_id)
    )
    return [
        FormStateCounts(form_id, xml_form_id, project_name, counts, sum(counts.values()))
        for form_id, xml_form_id, project_name in names
        for counts in [counted[form_id]]
    ]


def oldest_waiting(now: datetime) -> WaitingSubmission | None:
    """The submission that has waited longest for the worker (received or queued)."""
    row = db.session.execute(
        select(Submission.id, Form.xml_form_id, Submission.state, Submission.created_at)
        .join(Form, Form.id == Submission.form_id)
        .where(Submission.state.in_(WAITING_STATES))
        .order_by(Submission.created_at, Submission.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    age = max(0, int((now - row.created_at).total_seconds()))
    return WaitingSubmission(row.id, row.xml_form_id, row.state, age)


def attention(state: str, limit: int = LIST_LIMIT) -> tuple[list[AttentionSubmission], int]:
    """The newest submissions in `state` (at most `limit`), and how many there are."""
    total = db.session.scalar(
        select(func.count()).select_from(Submission).where(Submission.state == state)
    )
    rows = db.session.execute(
        select(
            Submission.id,
            Form.xml_form_id,
            Submission.state,
            Submission.created_at,
            Submission.problem,
            Submission.problems,
        )
        .join(Form, Form.id == Submission.form_id)
        .where(Submission.state == state)
        .order_by(Submission.created_at.desc(), Submission.id.desc())
        .limit(limit)
    ).all()
    return [
        AttentionSubmission(
            submission_id=row.id,
            xml_form_id=row.xml_form_id,
            state=row.state,
            received_at=row.created_at.strftime("%Y-%m-%d %H:%M"),
            problem=row.problem,
            problem_fields=sorted({p.get("field", "") for p in row.problems or []} - {""}),
        )
        for row in rows
    ], total
