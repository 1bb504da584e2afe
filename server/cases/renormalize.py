"""Re-run normalization after a mapping fix, so that the result equals a first run.

A case is built by several submissions, in the order they arrived. Re-applying one form's
submissions on top of today's cases would not equal a first run (versions, conflicts and
merged values all depend on that order), so the cases they touched are rebuilt: removed,
then every submission that built them, of any form, is applied again in arrival order.
The form being fixed is applied with its newest published mapping; the other forms with
their own. All in one transaction: it either completes or leaves everything as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update

from server.cases.models import Case, CaseVersion, Person
from server.cases.operations import normalize, record_outcome
from server.extensions import db
from server.forms.models import Form
from server.submissions.models import Submission, SubmissionState


@dataclass
class Renormalized:
    submissions: int
    cases_rebuilt: int
    states: dict[str, int]


@dataclass
class Plan:
    form: Form
    case_ids: set[int]  #: the cases to rebuild
    submission_ids: list[int]  #: what to apply again, in arrival order


def plan_renormalization(form: Form) -> Plan:
    """The cases the form's submissions touched, and every submission that built them."""
    own = select(Submission.id).where(Submission.form_id == form.id)
    touched_cases = select(CaseVersion.case_id).where(CaseVersion.submission_id.in_(own))
    case_ids = set(db.session.scalars(touched_cases)) | set(
        db.session.scalars(
            select(Submission.case_id).where(
                Submission.form_id == form.id, Submission.case_id.is_not(None)
            )
        )
    )
    replay_ids = set(db.session.scalars(own)) | set(
        db.session.scalars(
            select(CaseVersion.submission_id).where(
                CaseVersion.case_id.in_(case_ids), CaseVersion.submission_id.is_not(None)
            )
        )
    )
    return Plan(form, case_ids, sorted(replay_ids))


class QueueBusy(Exception):
    """Submissions of the plan still wait for the worker: rebuilding now could lose them."""


def renormalize(plan: Plan, progress: Callable[[int], None] | None = None) -> Renormalized:
    """Rebuild the planned cases; the caller commits.

    Refused while any submission to apply again is still received or queued: a worker
    applying it meanwhile would have its change removed with the case.
    """
    waiting = db.session.scalar(
        select(func.count())
        .select_from(Submission)
        .where(
            Submission.id.in_(plan.submission_ids),
            Submission.state.in_([SubmissionState.RECEIVED, SubmissionState.QUEUED]),
        )
    )
    if waiting:
        raise QueueBusy(
            f"{waiting} submission(s) of these cases still wait for the worker; run this "
            "again once the queue has processed them."
        )
    form = plan.form
    mapping = form.current_def.case_mapping if form.current_def else None
    _remove_cases(plan.case_ids)
    states: dict[str, int] = {}
    done = 0
    for submission_id in plan.submission_ids:
        submission = db.session.get(Submission, submission_id)
        used = mapping if submission.form_id == form.id else submission.form_def.case_mapping
        state = record_outcome(submission, normalize(submission, used))
        states[state] = states.get(state, 0) + 1
        done += 1
        if progress is not None:
            progress(1)
    return Renormalized(submissions=done, cases_rebuilt=len(plan.case_ids), states=states)


def _remove_cases(case_ids: set[int]) -> None:
    if not case_ids:
        return
    ids = list(case_ids)
    person_ids = set(db.session.scalars(select(Case.person_id).where(Case.id.in_(ids))))
    db.session.execute(update(Submission).where(Submission.case_id.in_(ids)).values(case_id=None))
    for case in db.session.scalars(select(Case).where(Case.id.in_(ids))):
        db.session.delete(case)  # children, consents and versions go with it (cascade)
    db.session.flush()
    db.session.execute(
        delete(Person).where(Person.id.in_(person_ids), ~Person.cases.any()),
        execution_options={"synchronize_session": False},
    )
    db.session.expire_all()
