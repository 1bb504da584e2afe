"""The review queue page: a possible duplicate that came by sync, listed with references
and scores (never names), accepted or rejected by an admin; who may see it or act."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.cases.models import Case, Person
from server.extensions import db
from sync import review
from sync.linkage import Match
from sync.models import SyncReview
from tests.admin_support import log_in
from tests.factories import csrf_protected_client, csrf_token
from tests.test_sync_apply_linkage import (  # noqa: F401 - fixtures used by name
    registered,
    secret,
    tha_key,
)
from tests.test_sync_review import proposed  # noqa: F401 - a fixture used by name

NAMES = ("Sreypov", "Chhorn")


def review_state(review_id: int) -> str:
    db.session.expire_all()
    return db.session.get(SyncReview, review_id).state


def case_of(case_uuid: str) -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.uuid == case_uuid))


def person_with_case(project_id: int, mission: str, reference: str) -> Person:
    person = Person(uuid=str(uuid.uuid4()), first_name=f"Name of {reference}")
    db.session.add(
        Case(
            uuid=str(uuid.uuid4()),
            project_id=project_id,
            person=person,
            owner_mission=mission,
            reference=reference,
        )
    )
    db.session.flush()
    return person


@pytest.fixture
def two_candidates(make) -> SyncReview:
    """A THA case that may be either of two persons this mission has."""
    project = make.project()
    first = person_with_case(project.id, "KHM", "KHM-1")
    second = person_with_case(project.id, "KHM", "KHM-2")
    incoming = person_with_case(project.id, "THA", "THA-9")
    item = review.propose_duplicate(
        incoming.cases[0],
        [
            Match("in", str(first.id), "possible", 1.4, 0.9, "birth year"),
            Match("in", str(second.id), "possible", 1.1, 0.8, "name"),
        ],
    )
    db.session.commit()
    return item


def transfer(make) -> SyncReview:
    """A transfer item without its transfer (as if the request's row were lost)."""
    project = make.project()
    person = person_with_case(project.id, "KHM", "KHM-7")
    item = SyncReview(kind="transfer", case_uuid=person.cases[0].uuid, reason="KHM to THA")
    db.session.add(item)
    db.session.commit()
    return item


# ---- listing ----------------------------------------------------------------------------


def test_the_page_lists_the_duplicate_with_references_and_scores_never_names(
    proposed,  # noqa: F811
    registered,  # noqa: F811
    admin_client,
):
    page = admin_client.get("/admin/sync/review")
    assert page.status_code == 200
    text = page.text
    assert "Possible duplicate" in text and f"#{proposed.id}" in text
    assert f'href="/cases/{proposed.case_uuid}"' in text and "(THA)" in text
    assert f'href="/cases/{registered.cases[0].uuid}"' in text and "(KHM)" in text
    assert f"Person #{registered.id}" in text and "name similarity" in text and "score" in text
    assert f'action="/admin/sync/review/{proposed.id}/accept"' in text
    assert f'action="/admin/sync/review/{proposed.id}/reject"' in text
    assert "data-confirm=" in text
    assert not any(name in text for name in NAMES)
    assert '<a href="/admin/sync" aria-current="page">Sync</a>' in text


def test_the_sync_page_and_its_json_count_the_open_items(
    proposed,  # noqa: F811
    admin_client,
):
    page = admin_client.get("/admin/sync").text
    assert 'id="review-open">1<' in page and 'href="/admin/sync/review"' in page
    assert 'data-review-kind="possible_duplicate">1<' in page
    data = admin_client.get("/admin/sync.json").json
    assert data["review"] == {
        "open": 1,
        "by_kind": {"possible_duplicate": 1, "conflict": 0, "transfer": 0, "referral": 0},
    }


def test_the_page_filters_by_kind_and_refuses_unknown_kinds(
    proposed,  # noqa: F811
    admin_client,
    make,
):
    other = transfer(make)
    assert f"review-{other.id}" in admin_client.get("/admin/sync/review").text
    only = admin_client.get("/admin/sync/review?kind=transfer").text
    assert f"review-{other.id}" in only and f"review-{proposed.id}" not in only
    assert admin_client.get("/admin/sync/review?kind=bogus").status_code == 404


# ---- deciding ---------------------------------------------------------------------------


def test_accept_links_the_case_to_the_existing_person_and_is_audited(
    proposed,  # noqa: F811
    registered,  # noqa: F811
    admin_client,
):
    response = admin_client.post(f"/admin/sync/review/{proposed.id}/accept", follow_redirects=True)
    assert response.status_code == 200
    assert f"Item {proposed.id} accepted: the case now belongs to person #{registered.id}." in (
        response.text
    )
    assert f"review-{proposed.id}" not in response.text
    assert case_of(proposed.case_uuid).person_id == registered.id
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "review.accept"))
    assert (event.user_id, event.object_id) == (admin_client.user_id, str(proposed.id))


def test_reject_keeps_them_apart(proposed, registered, admin_client):  # noqa: F811
    response = admin_client.post(f"/admin/sync/review/{proposed.id}/reject", follow_redirects=True)
    assert "rejected: the persons stay apart" in response.text
    assert review_state(proposed.id) == "rejected"
    assert case_of(proposed.case_uuid).person_id != registered.id
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "review.reject"))
    assert event.user_id == admin_client.user_id


def test_with_several_candidates_the_admin_chooses_one(two_candidates, admin_client):
    text = admin_client.get("/admin/sync/review").text
    first, second = (c["person_id"] for c in two_candidates.candidates)
    assert text.count('type="radio" name="person_id"') == 2
    assert f'value="{first}" checked' in text
    admin_client.post(
        f"/admin/sync/review/{two_candidates.id}/accept", data={"person_id": str(second)}
    )
    assert case_of(two_candidates.case_uuid).person_id == second


def test_a_decided_item_is_not_decided_again_and_an_unknown_one_is_404(
    proposed,  # noqa: F811
    admin_client,
):
    admin_client.post(f"/admin/sync/review/{proposed.id}/reject")
    for action in ("accept", "reject"):
        again = admin_client.post(f"/admin/sync/review/{proposed.id}/{action}")
        assert again.status_code == 302
        text = admin_client.get(again.location).text
        assert f"Review {proposed.id} was rejected already. Nothing was changed." in text
        assert "flash-warning" in text
        unknown = admin_client.post(f"/admin/sync/review/{proposed.id + 99}/{action}")
        assert unknown.status_code == 404
    assert review_state(proposed.id) == "rejected"
    decisions = select(AuditEvent).where(AuditEvent.action.like("review.%"))
    assert len(db.session.scalars(decisions).all()) == 1


def test_a_kind_without_code_of_its_own_is_listed_generically(admin_client, make, monkeypatch):
    """The database takes only the kinds sync.models knows: a made-up one is shown through
    open_reviews, as a kind added later would be before the page learns it."""
    item = transfer(make)
    made_up = dataclasses.replace(review.open_reviews()[0], kind="new_kind")
    monkeypatch.setattr(review, "open_reviews", lambda *args, **kwargs: [made_up])
    text = admin_client.get("/admin/sync/review").text
    assert "New kind" in text and f'href="/cases/{item.case_uuid}"' in text
    assert "KHM to THA" in text and "Accept" in text and "Reject" in text


def test_a_transfer_item_whose_transfer_is_unknown_here_is_not_decided(admin_client, make):
    item = transfer(make)
    for action in ("accept", "reject"):
        refused = admin_client.post(f"/admin/sync/review/{item.id}/{action}", follow_redirects=True)
        assert "the transfer of item" in refused.text and "is not known here" in refused.text
        assert "Nothing was changed." in refused.text
        assert review_state(item.id) == "open"


# ---- who may ----------------------------------------------------------------------------

URLS = [
    ("get", "/admin/sync/review"),
    ("post", "/admin/sync/review/1/accept"),
    ("post", "/admin/sync/review/1/reject"),
]


@pytest.mark.parametrize("role", ["designer", "viewer", "collector"])
def test_only_admins_may_see_or_decide(app, make, role, two_candidates):
    user = make.user(role)
    client = app.test_client()
    log_in(client, user.name)
    for method, url in URLS:
        url = url.replace("/1/", f"/{two_candidates.id}/")
        assert getattr(client, method)(url).status_code == 403, (method, url)
    assert review_state(two_candidates.id) == "open"


def test_anonymous_visitors_are_sent_to_log_in(client):
    for method, url in URLS:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and "/login" in response.location, (method, url)


def test_a_decision_needs_the_csrf_token(app, make, two_candidates):
    admin = make.user("admin")
    url = f"/admin/sync/review/{two_candidates.id}/reject"
    with csrf_protected_client(app, admin.name) as client:
        assert client.post(url).status_code == 400
        assert review_state(two_candidates.id) == "open"
        token = csrf_token(client.get("/admin/sync/review").text)
        assert client.post(url, data={"csrf_token": token}).status_code == 302
        assert review_state(two_candidates.id) == "rejected"


def test_the_queue_is_paged_oldest_first_and_keeps_the_kind(make, admin_client, monkeypatch):
    from server.pages import review as review_page

    monkeypatch.setattr(review_page, "PAGE_SIZE", 2)
    project = make.project()
    items = []
    known = person_with_case(project.id, "KHM", "KHM-0")
    for n in range(5):
        incoming = person_with_case(project.id, "THA", f"THA-{n}")
        match = Match("in", str(known.id), "possible", 1.0, 0.8, "name")
        items.append(review.propose_duplicate(incoming.cases[0], [match]).id)
    db.session.commit()
    first = admin_client.get("/admin/sync/review?kind=possible_duplicate").text
    assert f'id="review-{items[0]}"' in first and f'id="review-{items[2]}"' not in first
    assert "page 1 of 3" in first
    assert 'href="/admin/sync/review?page=2&amp;kind=possible_duplicate"' in first
    last = admin_client.get("/admin/sync/review?kind=possible_duplicate&page=3").text
    assert f'id="review-{items[4]}"' in last and f'id="review-{items[0]}"' not in last
    beyond = admin_client.get("/admin/sync/review?kind=possible_duplicate&page=9").text
    assert f'id="review-{items[4]}"' in beyond  # past the end: the last page
