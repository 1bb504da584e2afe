"""Normalization: apply a submission's values to the case schema. No HTTP, no commit.

The job calls `normalize` and commits once. Applying the same submission twice changes
nothing (a CaseVersion per case and submission); an update made on a phone from an old
version of the case is merged field by field, and a field someone else changed since is
kept as it is and recorded as a conflict for review, never silently overwritten.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from server.bulk import insert_rows
from server.cases.fields import CHILD_FIELDS, FIELDS, Field, Kind, Record
from server.cases.models import (
    Assistance,
    Case,
    CaseVersion,
    Consent,
    Episode,
    MovementEvent,
    Perpetrator,
    Person,
    SupportPlan,
    VictimProfile,
    new_uuid,
)
from server.cases.reading import Problem, RecordValues, SubmissionValues, read_submission
from server.extensions import db
from server.forms.xform import parse_xml_safely
from server.submissions.decryption import PROBLEM_FIELD, NotDecrypted, plaintext_xml
from server.submissions.models import Submission, SubmissionState

#: Each child dataset: its model, and the case's collection of them.
CHILD_MODELS = {
    Record.EPISODES: (Episode, "episodes"),
    Record.MOVEMENT_EVENTS: (MovementEvent, "movement_events"),
    Record.PERPETRATORS: (Perpetrator, "perpetrators"),
    Record.SUPPORT_PLANS: (SupportPlan, "support_plans"),
    Record.ASSISTANCE: (Assistance, "assistance"),
}
CLOSED_STATUSES = {"Closed", "ClosedReferred"}


@dataclass
class Outcome:
    case: Case | None = None
    problems: list[Problem] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    already_applied: bool = False
    #: The version this normalization made (pending until the caller's flush).
    version: CaseVersion | None = None
    #: The submission it came from (set by batch jobs, which write outcomes together).
    submission: Submission | None = None

    @property
    def needs_review(self) -> bool:
        return bool(self.problems or self.conflicts)


class CaseNotYetKnown(Exception):
    """An update arrived before the submission that creates its case: worth a retry.

    With several worker processes (or a screening still in a phone's outbox) a follow-up
    can be taken from the queue first; the job retries with backoff, and only its last
    attempt records the problem for review.
    """


#: What a follow-up reads or appends to on a known case: loaded with the case, one SELECT
#: per relationship for the whole batch, instead of one lazy load per case.
_FOLLOW_UP_LOADS = [
    joinedload(Case.person),
    selectinload(Case.victim),
    selectinload(Case.consents),
    *(selectinload(getattr(Case, collection)) for _, collection in CHILD_MODELS.values()),
]


class KnownRecords:
    """Cases and child records by uuid, for the submissions being normalized together.

    A batch reads every uuid its submissions name with one SELECT per table (`prefetch`);
    a record made earlier in the batch is found by the next submission before any flush.
    Anything not prefetched is looked up when asked.
    """

    def __init__(self, *, bulk: bool = False) -> None:
        self._by_model: dict[type, dict[str, object | None]] = {}
        #: In bulk mode new cases stay out of the session and are written by
        #: `write_created` with a few multi-row INSERTs instead of a unit-of-work flush.
        self.bulk = bulk
        self.created: list[tuple[Case, CaseVersion, Submission]] = []
        #: submission id -> the case its version is of (None: none yet), when prefetched.
        self._applied: dict[int, int | None] = {}

    def prefetch(self, values: list[SubmissionValues]) -> None:
        wanted: dict[type, set[str]] = {}
        for submission_values in values:
            for record in submission_values.records:
                if record.entity_id:
                    model = (
                        Case if record.dataset is Record.CASES else CHILD_MODELS[record.dataset][0]
                    )
                    wanted.setdefault(model, set()).add(record.entity_id)
        for model, uuids in wanted.items():
            known = self._by_model.setdefault(model, {})
            uuids -= known.keys()
            known.update(dict.fromkeys(uuids))
            for chunk in _chunks(sorted(uuids), 500):
                query = select(model).where(model.uuid.in_(chunk))
                if model is Case:
                    query = query.options(*_FOLLOW_UP_LOADS)
                for row in db.session.scalars(query):
                    known[row.uuid] = row

    def prefetch_applied(self, submission_ids: list[int]) -> None:
        """Which of these submissions already made a version (a rerun): one SELECT."""
        self._applied = dict.fromkeys(submission_ids)
        for chunk in _chunks(submission_ids, 500):
            rows = db.session.execute(
                select(CaseVersion.submission_id, CaseVersion.case_id).where(
                    CaseVersion.submission_id.in_(chunk)
                )
            )
            self._applied.update({submission_id: case_id for submission_id, case_id in rows})

    def already_applied(self, case: Case, submission: Submission) -> bool:
        """Has this submission made a version of this case (normalization runs again)?"""
        if submission.id in self._applied:
            return self._applied[submission.id] == case.id
        return (
            db.session.scalar(
                select(CaseVersion.id).where(
                    CaseVersion.case_id == case.id, CaseVersion.submission_id == submission.id
                )
            )
            is not None
        )

    def find(self, model: type, uuid: str | None):
        if not uuid:
            return None
        known = self._by_model.setdefault(model, {})
        if uuid not in known:
            known[uuid] = db.session.scalar(select(model).where(model.uuid == uuid))
        return known[uuid]

    def add(self, record) -> None:
        self._by_model.setdefault(type(record), {})[record.uuid] = record


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass
class ReadSubmission:
    """What a submission says, read from its XML; `outcome` is set when that is all."""

    values: SubmissionValues | None = None
    outcome: Outcome | None = None


def read(submission: Submission, mapping: dict | None) -> ReadSubmission:
    """Decrypt (in memory only), parse and read a submission's mapped values. No writes."""
    if not mapping:
        return ReadSubmission(outcome=Outcome())  # stored and exported, but makes no case
    try:
        xml = plaintext_xml(submission)  # an encrypted one is decrypted, in memory only
    except NotDecrypted as error:
        return ReadSubmission(outcome=Outcome(problems=[Problem(PROBLEM_FIELD, "", error.message)]))
    return ReadSubmission(values=read_submission(parse_xml_safely(xml), mapping))


def normalize(
    submission: Submission,
    mapping: dict | None,
    *,
    wait_for_case: bool = False,
    known: KnownRecords | None = None,
    read_first: ReadSubmission | None = None,
) -> Outcome:
    """Apply one submission to its case; the caller commits.

    `wait_for_case` raises CaseNotYetKnown for an update of an unknown case, so that the
    job is retried, instead of recording the problem at once. A batch passes what it read
    and prefetched (`read_first`, `known`).
    """
    found = read_first or read(submission, mapping)
    if found.outcome is not None:
        return found.outcome
    values = found.values
    outcome = Outcome(problems=list(values.problems))
    case_values = values.case
    if case_values is None or not (case_values.create or case_values.update):
        if submission.deprecated_id and _original(submission)[0] is not None:
            outcome.problems.append(
                Problem(
                    "cases",
                    "",
                    "This edit no longer saves the case its first version made (consent "
                    "refused or withdrawn?). Review the case: nothing was changed.",
                )
            )
        return outcome  # e.g. consent refused: the form's create_if said no
    with db.session.no_autoflush:  # one flush, at the caller's commit
        return _normalize_values(
            submission, values, outcome, wait_for_case, known or KnownRecords()
        )


def _normalize_values(
    submission: Submission,
    values: SubmissionValues,
    outcome: Outcome,
    wait_for_case: bool,
    known: KnownRecords,
) -> Outcome:
    case_values = values.case
    case = known.find(Case, case_values.entity_id)
    if known.bulk and case is not None and case.id is None:
        raise CaseNotYetKnown(case_values.path)  # made in this batch: after its commit
    if case is not None and (
        case.project_id != submission.form.project_id
        or (case_values.create and case.owner_mission != current_app.config["MISSION_CODE"])
    ):
        # Not this project's to change, or a new case that claims a linked mission's id:
        # as if unknown. A linked mission's case received here may be updated (a follow-up
        # here); sync.outbox sends the update back to its owner.
        case = None
        if case_values.create:
            outcome.problems.append(
                Problem("cases", case_values.path, "This case id is already used elsewhere.")
            )
            return outcome
    if case is None and not case_values.create:
        if wait_for_case:
            raise CaseNotYetKnown(case_values.path)
        outcome.problems.append(
            Problem(
                "cases",
                case_values.path,
                "This submission updates a case that is not known on this server "
                "(it may not have arrived yet, or was deleted).",
            )
        )
        return outcome
    if case is not None and known.already_applied(case, submission):
        outcome.case, outcome.already_applied = case, True
        return outcome
    created = case is None
    if created:
        case = _new_case(submission, case_values, add=not known.bulk)
        known.add(case)
    elif submission.deprecated_id and case_values.base_version is None:
        # An edit starts from the case as its first version left it, not from today's.
        original_case_id, original_version = _original(submission)
        if original_case_id == case.id:
            case_values.base_version = original_version
    outcome.version = _apply(
        case, submission, case_values, values.children(), outcome, created, known
    )
    outcome.case = case
    if created and known.bulk:
        known.created.append((case, outcome.version, submission))
    else:
        db.session.add(outcome.version)
        if case.id is not None:
            submission.case_id = case.id  # a plain column: what a bulk write can carry
        else:
            submission.case = case
    return outcome


def write_created(known: KnownRecords) -> None:
    """Insert the cases a bulk batch made, with their records and first versions: one
    multi-row INSERT per table instead of the unit of work, which cost more than building
    the cases did (bench/CASES.md). Ids come back where later rows need them."""
    created = known.created
    if not created:
        return
    for case, _, _ in created:
        _settle_relationships(case)
        _settle_relationships(case.person)
    _insert_rows([case.person for case, _, _ in created], returning_ids=True)
    for case, _, _ in created:
        case.person_id = case.person.id
    _insert_rows([case for case, _, _ in created], returning_ids=True)
    rows: dict[type, list] = {}
    for case, version, submission in created:
        submission.case_id = version.case_id = case.id
        if case.victim is not None:
            case.victim.case_id = case.id
            rows.setdefault(VictimProfile, []).append(case.victim)
        for episode in case.episodes:
            episode.person_id = case.person_id
        for model, collection in [*CHILD_MODELS.values(), (Consent, "consents")]:
            for record in getattr(case, collection):
                record.case_id = case.id
                rows.setdefault(model, []).append(record)
        rows.setdefault(CaseVersion, []).append(version)
    for records in rows.values():
        _insert_rows(records, returning_ids=False)
    known.created = []


def _insert_rows(records: list, *, returning_ids: bool) -> None:
    """One bulk INSERT for records of one model, every row with the same columns: what a
    record set, else its column's default; columns nobody set and that have a server
    default (timestamps) are left to the database."""
    table = type(records[0]).__table__
    columns = []
    for column in table.columns:
        if column.primary_key:
            continue
        if column.default is None and not any(column.key in vars(r) for r in records):
            continue
        columns.append(column)
    values = [
        {c.key: vars(r)[c.key] if c.key in vars(r) else _default(c) for c in columns}
        for r in records
    ]
    ids = insert_rows(db.session, table, columns, values, ids=returning_ids)
    for record, new_id in zip(records, ids or (), strict=returning_ids):
        set_committed_value(record, "id", new_id)


def _settle_relationships(record) -> None:
    """Say that what a new record's untouched relationships hold is nothing, so that
    reading them once it is written (outside the session) does not try to load them."""
    for relationship in sa_inspect(type(record)).relationships:
        if relationship.key not in vars(record):
            set_committed_value(record, relationship.key, [] if relationship.uselist else None)


def _default(column):
    default = column.default
    if default is None:
        return None
    return default.arg(None) if default.is_callable else default.arg


def _original(submission: Submission) -> tuple[int | None, int | None]:
    """The case an edited submission's previous version changed, and the version it made."""
    row = db.session.execute(
        select(Submission.case_id, CaseVersion.version)
        .outerjoin(
            CaseVersion,
            (CaseVersion.submission_id == Submission.id)
            & (CaseVersion.case_id == Submission.case_id),
        )
        .where(
            Submission.form_id == submission.form_id,
            Submission.instance_id == submission.deprecated_id,
        )
    ).first()
    return (row.case_id, row.version) if row else (None, None)


def _new_case(submission: Submission, values: RecordValues, *, add: bool = True) -> Case:
    """A case and its person, pending: nothing is written (or read back) until the commit
    (or, in bulk mode, until `write_created`)."""
    case = Case(
        uuid=values.entity_id or new_uuid(),
        project_id=submission.form.project_id,
        person=Person(uuid=new_uuid(), citizenship=[]),
        owner_mission=current_app.config["MISSION_CODE"],
        status="Active",
        version=0,
    )
    if add:
        db.session.add(case)
    return case


def _changed_since(case: Case, base_version: int) -> set[str]:
    """Fields other submissions changed after the version the phone started from."""
    changed: set[str] = set()
    for version in case.versions:
        if version.version > base_version:
            changed.update(version.changes.get("fields", {}))
    return changed


def _apply(
    case: Case,
    submission: Submission,
    values: RecordValues,
    children: list[RecordValues],
    outcome: Outcome,
    created: bool,
    known: KnownRecords,
) -> CaseVersion:
    stale = not created and values.base_version is not None and values.base_version < case.version
    contested = _changed_since(case, values.base_version) if stale else set()
    changes: dict[str, object] = {}
    consent_values: dict[str, object] = {}
    for name, value in values.values.items():
        spec = FIELDS[name]
        if spec.part == "consent":
            consent_values[spec.attribute] = value
            continue
        target = _part(case, spec.part, created)
        old = getattr(target, spec.attribute)
        new = _stored(spec, value)
        if old == new:
            continue
        if name in contested:
            outcome.conflicts.append(name)
            continue
        setattr(target, spec.attribute, new)
        changes[name] = value
    if values.label and values.label != case.label:
        case.label = values.label
    if consent_values:
        changes.update(_record_consent(case, submission, consent_values))
    _derive(case, submission)
    records = [_apply_child(case, child, outcome, known) for child in children]
    case.version += 1
    return CaseVersion(
        case=case,
        version=case.version,
        submission_id=submission.id,
        base_version=values.base_version,
        submitter_user_id=submission.submitter_user_id,
        submitter_app_user_id=submission.submitter_app_user_id,
        changes={"create": created, "fields": changes, "records": [r for r in records if r]},
        conflicts=outcome.conflicts,
    )


def set_field(case: Case, spec: Field, value: object) -> bool:
    """Set one case-level field (case, person or victim profile); True if it changed.

    For changes that come from elsewhere than a form (a linked mission's): the same
    table, the same models as a submission's values.
    """
    target = _part(case, spec.part, False)
    new = None if value is None else _stored(spec, value)
    if getattr(target, spec.attribute) == new:
        return False
    setattr(target, spec.attribute, new)
    return True


def set_record_field(record: object, spec: Field, value: object) -> bool:
    """Set one field of a child record (an episode, a movement event...); True if changed."""
    new = None if value is None else _stored(spec, value)
    if getattr(record, spec.attribute) == new:
        return False
    setattr(record, spec.attribute, new)
    return True


def derive(case: Case) -> None:
    """Birth year and closing date after a change that came without a submission."""
    _derive(case, None)


def _stored(spec: Field, value: object) -> object:
    """Dates travel as ISO strings in `changes`; the models hold date objects."""
    return dt.date.fromisoformat(value) if spec.kind == Kind.DATE else value


def _part(case: Case, part: str, created: bool):
    if part == "case":
        return case
    if part == "person":
        return case.person
    if part == "victim":
        if case.victim is None:
            case.victim = VictimProfile()
        return case.victim
    if part == "episode":
        if not case.episodes:
            case.episodes.append(Episode(uuid=new_uuid(), person=case.person))
        return case.episodes[-1]
    raise AssertionError(part)


def _record_consent(case: Case, submission: Submission, values: dict) -> dict:
    """Each consent answer is a new statement; what it does not say carries over."""
    previous = case.consent
    carried = {
        "given": previous.given if previous else None,
        "sharing": previous.sharing if previous else None,
        "research": previous.research if previous else None,
        "purposes": list(previous.purposes) if previous else [],
        "recipient_missions": list(previous.recipient_missions) if previous else [],
    }
    carried.update({k: v for k, v in values.items() if k != "withdrawn"})
    withdrawn = bool(values.get("withdrawn")) or (
        previous is not None and previous.given is True and values.get("given") is False
    )
    if withdrawn:
        carried["sharing"] = False
    statement = Consent(
        uuid=new_uuid(), submission_id=submission.id, withdrawn=withdrawn, **carried
    )
    case.consents.append(statement)
    by_attribute = {f.attribute: f.name for f in FIELDS.values() if f.part == "consent"}
    before = {by_attribute[k]: v for k, v in _consent_dict(previous).items()}
    after = {by_attribute[k]: v for k, v in _consent_dict(statement).items()}
    return {name: value for name, value in after.items() if before.get(name) != value}


def _consent_dict(consent: Consent | None) -> dict:
    if consent is None:
        return {}
    return {
        "given": consent.given,
        "sharing": consent.sharing,
        "research": consent.research,
        "purposes": consent.purposes,
        "recipient_missions": consent.recipient_missions,
        "withdrawn": consent.withdrawn,
    }


def _derive(case: Case, submission: Submission | None) -> None:
    """Values computed from others: birth year (for age bands and linkage), closing date."""
    person = case.person
    if person.birthdate is not None:
        person.birth_year = person.birthdate.year
    elif person.age_estimate is not None:
        observed = submission.created_at if submission is not None else None
        person.birth_year = (observed or dt.datetime.now(dt.UTC)).year - person.age_estimate
    if case.status in CLOSED_STATUSES and case.closed_at is None:
        case.closed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    elif case.status not in CLOSED_STATUSES:
        case.closed_at = None


def _apply_child(
    case: Case, values: RecordValues, outcome: Outcome, known: KnownRecords
) -> dict | None:
    """Create or update one child record by its entity id."""
    if not (values.create or values.update):
        return None
    model, collection = CHILD_MODELS[values.dataset]
    record = None
    if values.entity_id:  # also for a new case: the id may be another case's record
        record = known.find(model, values.entity_id)
        if record is not None and not _belongs(record, case, collection):
            outcome.problems.append(
                Problem(values.dataset.value, values.path, "This record belongs to another case.")
            )
            return None
    if record is None:
        if not values.create:
            outcome.problems.append(
                Problem(values.dataset.value, values.path, "The record to update is not known.")
            )
            return None
        record = model(uuid=values.entity_id or new_uuid())
        if model is Episode:
            record.person = case.person
        getattr(case, collection).append(record)
        known.add(record)
    known = CHILD_FIELDS[values.dataset]
    changed = {}
    for name, value in values.values.items():
        spec = known[name]
        old = getattr(record, spec.attribute)
        new = _stored(spec, value)
        if old != new:
            setattr(record, spec.attribute, new)
            changed[name] = value
    return {"dataset": values.dataset.value, "uuid": record.uuid, "fields": changed}


def _belongs(record, case: Case, collection: str) -> bool:
    """Is the record this case's? One made earlier in a batch has no case_id yet."""
    if record.case_id is not None:
        return record.case_id == case.id
    return record in getattr(case, collection)


def record_outcome(submission: Submission, outcome: Outcome) -> str:
    """Write what normalization found on the submission: its state and its problems."""
    if outcome.already_applied:  # a rerun: what the first run recorded stands
        submission.state = (
            SubmissionState.NEEDS_REVIEW if submission.problems else SubmissionState.NORMALIZED
        )
        return submission.state
    submission.problems = [p.as_dict() for p in outcome.problems] + [
        {
            "field": name,
            "path": "",
            "message": "Changed on the server since this phone's copy of the case; "
            "the server's value was kept for review.",
        }
        for name in outcome.conflicts
    ]
    submission.problem = None
    submission.state = (
        SubmissionState.NEEDS_REVIEW if outcome.needs_review else SubmissionState.NORMALIZED
    )
    return submission.state
