"""The review queue: a possible duplicate from THA listed for KHM's admins, accepted
(merged into the person KHM has) or rejected (kept apart, not proposed again)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from server.audit.models import AuditEvent
from server.cases.models import Case, Person
from server.cases.queries import is_retrafficked
from server.extensions import db
from sync import review
from sync.linkage import Match
from sync.models import PersonLinkage, SyncReview
from tests.test_sync_apply import deliver
from tests.test_sync_apply_linkage import (  # noqa: F401 - fixtures used by name
    encoding,
    registered,
    screening,
    secret,
    tha_key,
)


@pytest.fixture
def proposed(client, tha_key, app_context, registered, secret) -> SyncReview:  # noqa: F811
    """THA's case of "Sreypov Chhorn" with no birth date: possibly KHM's person."""
    case_uuid = str(uuid.uuid4())
    no_date = encoding(secret, "Sreypov", "Chhorn", birthdate=None)
    assert deliver(client, tha_key, screening(case_uuid, no_date)) == ["applied"]
    return db.session.scalar(select(SyncReview))


def persons() -> int:
    return db.session.scalar(select(func.count()).select_from(Person))


def events(action: str) -> list[AuditEvent]:
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_open_reviews_give_the_page_references_and_scores_never_names(
    proposed,
    registered,  # noqa: F811
):
    [item] = review.open_reviews()
    assert review.count_open() == 1 and review.count_open("conflict") == 0
    assert (item.id, item.kind, item.reason) == (proposed.id, "possible_duplicate", "name")
    assert item.case.uuid == proposed.case_uuid and item.case.owner_mission == "THA"
    [candidate] = item.candidates
    assert candidate.person_id == registered.id and 0 < candidate.name <= 1
    [its_case] = candidate.cases
    assert its_case.owner_mission == "KHM" and its_case.uuid == registered.cases[0].uuid
    assert "Sreypov" not in repr(item) and "Chhorn" not in repr(item)


def test_accept_merges_the_new_person_into_the_existing_one(proposed, registered, make):  # noqa: F811
    admin = make.user(role="admin")
    duplicate_id = proposed.person_id
    decided = review.accept(proposed.id, admin)
    db.session.commit()

    case = db.session.scalar(select(Case).where(Case.uuid == proposed.case_uuid))
    assert case.person_id == registered.id and persons() == 1
    assert db.session.get(Person, duplicate_id) is None
    assert db.session.get(PersonLinkage, duplicate_id) is None
    assert is_retrafficked(case), "her episodes together: two"
    assert (decided.state, decided.decided_by, decided.chosen_person_id) == (
        "accepted",
        admin.id,
        registered.id,
    )
    assert decided.decided_at is not None and review.open_reviews() == []
    [event] = events("review.accept")
    assert (event.user_id, event.object_type, event.object_id) == (
        admin.id,
        "sync_review",
        str(proposed.id),
    )
    assert "Sreypov" not in repr(event.details)
    with pytest.raises(review.ReviewClosed):
        review.accept(proposed.id, admin)


def test_reject_keeps_them_apart_and_the_pair_is_not_proposed_again(
    proposed,
    registered,  # noqa: F811
    make,
):
    admin = make.user(role="admin")
    review.reject(proposed.id, admin)
    db.session.commit()
    case = db.session.scalar(select(Case).where(Case.uuid == proposed.case_uuid))
    assert case.person_id == proposed.person_id != registered.id and persons() == 2
    assert [e.user_id for e in events("review.reject")] == [admin.id]

    again = Match("incoming", str(registered.id), "possible", 1.0, 1.0, "name")
    assert review.propose_duplicate(case, [again]) is None
    assert review.count_open() == 0
    with pytest.raises(review.ReviewClosed):
        review.reject(proposed.id, admin)


def test_a_decision_needs_an_open_item_and_one_of_its_candidates(proposed, make):
    admin = make.user(role="admin")
    with pytest.raises(review.ReviewNotFound):
        review.accept(proposed.id + 1000, admin)
    with pytest.raises(review.ReviewClosed):
        review.accept(proposed.id, admin, person_id=proposed.person_id)
    assert review.count_open() == 1


def test_an_open_item_for_the_case_is_not_opened_twice(proposed, registered):  # noqa: F811
    case = db.session.scalar(select(Case).where(Case.uuid == proposed.case_uuid))
    again = Match("incoming", str(registered.id), "possible", 1.0, 1.0, "name")
    assert review.propose_duplicate(case, [again]) is None
    assert review.count_open() == 1
