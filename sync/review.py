"""The review queue: what sync leaves to a person to decide. No HTTP here.

Kinds: `possible_duplicate` (a linked mission's case whose person may be one this mission
has: sync.apply opens it), `conflict` (a protected field, status, owner or consent,
written here and at a linked mission concurrently: sync.merge), and `transfer`,
`referral` (a mission asks this one to take or share a case: sync.transfers opens them,
with the local persons its encoding matches as candidates). An item holds ids, scores,
field names, mission codes, clocks and the name of the rule that proposed it, never a
personal value or a field's value; whoever decides opens the cases (in scope, audited) to
compare.

For the admin page (one call each; the caller commits, as with every operation):

- `open_reviews(kind=None, limit=50, offset=0) -> list[ReviewItem]`, oldest first, and
  `count_open(kind=None) -> int`: what to list, with each case's and candidate's
  references (uuid, reference, owner mission) to link to.
- `accept(review_id, user, person_id=None) -> SyncReview`: a possible duplicate is the
  same person (the best candidate, or `person_id` among them): the case and everything
  of its person move to that person, the emptied person is deleted.
  A conflict: the incoming value replaces the local one (sync.conflict.settle).
  A transfer or referral: taken (sync.transfers.accept), `person_id` being the local
  person it is about, if any.
- `reject(review_id, user) -> SyncReview`: not the same person; the pair is remembered
  and not proposed again. A conflict: the local value stays. A transfer or referral:
  declined.
  Either way a decided conflict is a new write here, newer than both: at the owner (status,
  owner) it travels to every linked mission, so all converge; a copy's consent conflict
  settles at the copy only (its consent statement never travels).
Both raise `ReviewNotFound` or `ReviewClosed` (already decided or revoked), and record an
audit event (`review.accept`, `review.reject`) with the requester's address.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import delete, func, or_, select

from server.audit.operations import record
from server.auth.models import User
from server.cases.models import Case, Person
from server.extensions import db
from sync.linkage import Match
from sync.merge import Conflict
from sync.models import PersonLinkage, PersonLinkageKey, SyncReview

log = logging.getLogger(__name__)

POSSIBLE_DUPLICATE, CONFLICT = "possible_duplicate", "conflict"
TRANSFER_KINDS = ("transfer", "referral")
#: Person attributes an accepted duplicate brings to the person it joins where that is
#: blank (the person kept holds this mission's values).
MERGED_ATTRIBUTES = (
    "first_name",
    "middle_name",
    "second_name",
    "birthdate",
    "birth_year",
    "age_estimate",
    "gender",
    "marital_status",
    "number_of_children",
    "primary_language",
    "secondary_language",
    "highest_level_of_education",
    "citizenship",
)


class ReviewNotFound(LookupError):
    """No review item with this id."""


class ReviewClosed(ValueError):
    """The item was decided already, or what it is about is gone."""


@dataclass(frozen=True)
class CaseRef:
    uuid: str
    reference: str | None
    owner_mission: str


@dataclass(frozen=True)
class Candidate:
    person_id: int
    score: float  #: name similarity plus evidence (sync.linkage.Match.score)
    name: float  #: name similarity of the encodings, 0..1
    reason: str  #: the rule: "birthdate", "document", "phone", "name", ...
    cases: list[CaseRef]  #: that person's cases here, to open and compare


@dataclass(frozen=True)
class ConflictField:
    """One field of a conflict: which missions wrote it, and their clocks (no value)."""

    field: str  #: a field name (cas_Status), owner_mission or consent
    local_mission: str
    local_clock: str
    incoming_mission: str
    incoming_clock: str


@dataclass(frozen=True)
class ReviewItem:
    id: int
    kind: str
    created_at: dt.datetime
    case: CaseRef | None  #: None if the case is gone since
    person_id: int | None
    reason: str | None
    candidates: list[Candidate]
    #: A conflict's fields; empty for other kinds.
    conflicts: list[ConflictField] = field(default_factory=list)
    #: A transfer or referral: the mission asking; None for other kinds.
    from_mission: str | None = None


# ---- opening ----------------------------------------------------------------------------


def propose_duplicate(case: Case, matches: Iterable[Match]) -> SyncReview | None:
    """Open a possible-duplicate item for the case's person, unless it is open already or
    every candidate was rejected for this case or this person before."""
    rejected = _rejected_candidates(case.uuid, case.person_id)
    wanted = [m for m in matches if int(m.local) not in rejected and int(m.local) != case.person_id]
    if not wanted:
        return None
    already = db.session.scalar(
        select(SyncReview.id).where(
            SyncReview.kind == POSSIBLE_DUPLICATE,
            SyncReview.state == "open",
            SyncReview.case_uuid == case.uuid,
        )
    )
    if already is not None:
        return None
    review = SyncReview(
        kind=POSSIBLE_DUPLICATE,
        state="open",
        case_uuid=case.uuid,
        person_id=case.person_id,
        candidates=[
            {"person_id": int(m.local), "score": m.score, "name": m.name, "reason": m.reason}
            for m in wanted
        ],
        reason=wanted[0].reason,
    )
    db.session.add(review)
    db.session.flush()
    log.info("review %s opened: possible duplicate for case %s", review.id, case.uuid)
    return review


def propose_conflict(
    case: Case, change_id: str, origin: str, conflicts: list[Conflict]
) -> SyncReview:
    """Open a conflict item for these fields of the case, or add them to the one open: the
    newest incoming write of a field replaces an older one in it (one decision per field)."""
    review = db.session.scalar(
        select(SyncReview).where(
            SyncReview.kind == CONFLICT,
            SyncReview.state == "open",
            SyncReview.case_uuid == case.uuid,
        )
    )
    if review is None:
        review = SyncReview(kind=CONFLICT, state="open", case_uuid=case.uuid, candidates=[])
        db.session.add(review)
    entries = {e["field"]: e for e in (review.details or {}).get("fields", [])}
    for conflict in conflicts:
        entries[conflict.field] = conflict.as_json() | {"change_id": change_id, "origin": origin}
    review.details = {"fields": [entries[k] for k in sorted(entries)]}
    review.person_id = case.person_id
    review.reason = conflict_reason(review.details["fields"])
    db.session.flush()
    log.info("review %s: conflict on %s for case %s", review.id, sorted(entries), case.uuid)
    return review


def conflict_reason(entries: list[dict]) -> str:
    """Fields, missions and clocks, e.g. `cas_Status: THA 0001764...000000 / KHM ...`."""
    return "; ".join(
        f"{e['field']}: {_mission(e['local'])} {e['local']} / {_mission(e['incoming'])} "
        f"{e['incoming']}"
        for e in entries
    )[:255]


def _mission(clock: str) -> str:
    return clock.rsplit(".", 1)[-1]


def _rejected_candidates(case_uuid: str, person_id: int | None) -> set[int]:
    rows = db.session.scalars(
        select(SyncReview.candidates).where(
            SyncReview.kind == POSSIBLE_DUPLICATE,
            SyncReview.state == "rejected",
            or_(SyncReview.case_uuid == case_uuid, SyncReview.person_id == person_id),
        )
    )
    return {c["person_id"] for candidates in rows for c in candidates}


# ---- listing ----------------------------------------------------------------------------


def count_open(kind: str | None = None) -> int:
    query = select(func.count(SyncReview.id)).where(SyncReview.state == "open")
    if kind is not None:
        query = query.where(SyncReview.kind == kind)
    return db.session.scalar(query)


def open_reviews(kind: str | None = None, *, limit: int = 50, offset: int = 0) -> list[ReviewItem]:
    """The open items, oldest first, with the references the page links to."""
    query = select(SyncReview).where(SyncReview.state == "open")
    if kind is not None:
        query = query.where(SyncReview.kind == kind)
    reviews = db.session.scalars(query.order_by(SyncReview.id).limit(limit).offset(offset)).all()
    case_uuids = {r.case_uuid for r in reviews}
    person_ids = {c["person_id"] for r in reviews for c in r.candidates}
    cases = db.session.execute(
        select(Case.uuid, Case.reference, Case.owner_mission, Case.person_id)
        .where(or_(Case.uuid.in_(case_uuids), Case.person_id.in_(person_ids)))
        .order_by(Case.id)
    ).all()
    by_uuid = {row.uuid: CaseRef(row.uuid, row.reference, row.owner_mission) for row in cases}
    by_person: dict[int, list[CaseRef]] = {}
    for row in cases:
        by_person.setdefault(row.person_id, []).append(by_uuid[row.uuid])
    return [
        ReviewItem(
            id=r.id,
            kind=r.kind,
            created_at=r.created_at,
            case=by_uuid.get(r.case_uuid),
            person_id=r.person_id,
            reason=r.reason,
            candidates=[
                Candidate(
                    person_id=c["person_id"],
                    score=c["score"],
                    name=c["name"],
                    reason=c["reason"],
                    cases=by_person.get(c["person_id"], []),
                )
                for c in r.candidates
            ],
            conflicts=[
                ConflictField(
                    e["field"],
                    _mission(e["local"]),
                    e["local"],
                    _mission(e["incoming"]),
                    e["incoming"],
                )
                for e in (r.details or {}).get("fields", [])
            ],
            from_mission=(r.details or {}).get("from_mission"),
        )
        for r in reviews
    ]


# ---- deciding ---------------------------------------------------------------------------


def _open(review_id: int) -> SyncReview:
    review = db.session.get(SyncReview, review_id)
    if review is None:
        raise ReviewNotFound(review_id)
    if review.state != "open":
        raise ReviewClosed(f"Review {review_id} was {review.state} already.")
    return review


def _decide(review: SyncReview, state: str, user: User, address: str | None = None) -> None:
    user_id, now = user.id, dt.datetime.now(dt.UTC).replace(tzinfo=None)  # read, then write:
    review.state, review.decided_by, review.decided_at = state, user_id, now  # one CHECK
    record(
        f"review.{'accept' if state == 'accepted' else 'reject'}",
        user_id=user.id,
        object_type="sync_review",
        object_id=review.id,
        address=address,
        details={"kind": review.kind, "case": review.case_uuid},
    )


def accept(
    review_id: int, user: User, person_id: int | None = None, *, address: str | None = None
) -> SyncReview:
    """The same person: the case's person joins the chosen candidate (see the module)."""
    review = _open(review_id)
    if review.kind == CONFLICT:
        return _settle(review, user, take_incoming=True, address=address)
    if review.kind in TRANSFER_KINDS:
        return _answer_transfer(review, user, person_id, address=address)
    if review.kind != POSSIBLE_DUPLICATE:
        raise ReviewClosed(f"Review {review_id} is a {review.kind}: not decided here yet.")
    offered = [c["person_id"] for c in review.candidates]
    chosen = offered[0] if person_id is None else person_id
    if chosen not in offered:
        raise ReviewClosed(f"Person {chosen} is not a candidate of review {review_id}.")
    case = db.session.scalar(select(Case).where(Case.uuid == review.case_uuid))
    target = db.session.get(Person, chosen)
    if case is None or target is None:
        raise ReviewClosed(f"Review {review_id}: its case or candidate is gone.")
    merge_person(case.person, target)
    _decide(review, "accepted", user, address)
    review.chosen_person_id = chosen
    db.session.flush()
    return review


def merge_person(duplicate: Person, target: Person) -> None:
    """Move every case and episode of `duplicate` to `target`, fill `target`'s blanks from
    it, and delete it: one person, whose episodes together say whether re-trafficked."""
    if duplicate is target:
        return
    for case in list(duplicate.cases):
        case.person = target
    for episode in list(duplicate.episodes):
        episode.person = target
    for name in MERGED_ATTRIBUTES:
        mine, theirs = getattr(target, name), getattr(duplicate, name)
        if (mine is None or mine == []) and theirs not in (None, []):
            setattr(target, name, theirs)
    db.session.flush()
    duplicate_id = duplicate.id
    for model in (PersonLinkageKey, PersonLinkage):
        db.session.execute(delete(model).where(model.person_id == duplicate_id))
    db.session.delete(duplicate)
    db.session.flush()


def reject(review_id: int, user: User, *, address: str | None = None) -> SyncReview:
    """Not the same person: kept apart, and the pair is not proposed again. A conflict:
    the local value stays (and travels as the decision)."""
    review = _open(review_id)
    if review.kind == CONFLICT:
        return _settle(review, user, take_incoming=False, address=address)
    if review.kind in TRANSFER_KINDS:
        return _answer_transfer(review, user, None, address=address, accepted=False)
    _decide(review, "rejected", user, address)
    db.session.flush()
    return review


def _answer_transfer(
    review: SyncReview,
    user: User,
    person_id: int | None,
    *,
    address: str | None,
    accepted: bool = True,
) -> SyncReview:
    from sync import transfers  # sync.transfers applies cases with sync.apply, as above

    try:
        if accepted:
            transfers.accept(review, user, person_id, address=address)
        else:
            transfers.reject(review, user, address=address)
    except (transfers.TransferRefused, transfers.TransferNotFound) as refusal:
        raise ReviewClosed(f"Review {review.id}: {refusal}") from None
    _decide(review, "accepted" if accepted else "rejected", user, address)
    review.chosen_person_id = person_id if accepted else None
    db.session.flush()
    return review


def _settle(
    review: SyncReview, user: User, *, take_incoming: bool, address: str | None = None
) -> SyncReview:
    from sync.conflict import settle  # sync.conflict applies values with sync.apply,

    # which imports this module to open items
    settle(review, take_incoming=take_incoming)
    _decide(review, "accepted" if take_incoming else "rejected", user, address)
    db.session.flush()
    return review
