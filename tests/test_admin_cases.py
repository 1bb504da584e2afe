"""The case pages: the list with filters and pages, one case with its timeline, who may see
them, and that every list and case opened is on the audit trail."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.extensions import db
from tests.cases_support import World, case_row, make_world
from tests.factories import PASSWORD

NAMES = re.compile(r"\b(Sokha|Dara|Mya|Chan)\b")  # the people's names in the world


@pytest.fixture
def world(make, client, runner) -> World:
    return make_world(make, client, runner)


def browser_for(app, name: str):
    """A test client logged in through the login page, as a person would."""
    client = app.test_client()
    response = client.post("/login", data={"username": name, "password": PASSWORD})
    assert response.status_code == 302, response.text
    return client


def _user_name(world: World, who: str) -> str:
    from server.auth.models import User

    return db.session.get(User, world.user_ids[who]).name


def _events(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def test_the_list_shows_codes_not_names_and_filters(app, world):
    viewer = browser_for(app, _user_name(world, "viewer"))
    page = viewer.get("/cases")
    assert page.status_code == 200
    for uuid in (world.girl, world.man, world.woman):
        assert f'href="/cases/{uuid}"' in page.text
    assert f"/cases/{world.elsewhere}" not in page.text  # another project
    assert 'id="case-count">3 cases' in page.text
    assert NAMES.search(page.text) is None
    assert "re-trafficked" in page.text and "Cambodia" in page.text  # the citizenship filter

    feminine = viewer.get("/cases", query_string={"gender": "Feminine", "age_band": "0-17"})
    assert f"/cases/{world.girl}" in feminine.text and f"/cases/{world.woman}" not in feminine.text
    assert 'id="case-count">1 case<' in feminine.text
    assert '<option value="Feminine" selected>' in feminine.text
    missions = viewer.get("/cases", query_string={"mission": "KHM-PP"})
    assert f"/cases/{world.man}" in missions.text and f"/cases/{world.girl}" not in missions.text

    [*_, listed] = _events("case.list")
    assert listed.user_id == world.user_ids["viewer"]
    assert listed.details == {"mission": "KHM-PP", "via": "page", "total": 1}


def test_a_bad_filter_is_shown_on_the_page_with_400(app, world):
    viewer = browser_for(app, _user_name(world, "viewer"))
    response = viewer.get("/cases", query_string={"gender": "robot"})
    assert response.status_code == 400
    assert 'role="alert">Gender:' in response.text and 'id="case-count">0 cases' in response.text


def test_the_list_pages(app, world, monkeypatch):
    monkeypatch.setattr("server.pages.cases.PAGE_SIZE", 2)
    viewer = browser_for(app, _user_name(world, "viewer"))
    first = viewer.get("/cases", query_string={"status": "Active"})
    assert "Page 1 of 1" not in first.text  # two active cases: one page, no pager
    first = viewer.get("/cases")
    assert "Page 1 of 2" in first.text and 'rel="next"' in first.text
    assert first.text.count('href="/cases/') == 2
    second = viewer.get("/cases", query_string={"page": 2})
    assert "Page 2 of 2" in second.text and second.text.count('href="/cases/') == 1
    assert f"/cases/{world.girl}" in second.text  # the oldest


def test_the_case_page_shows_every_section_and_the_timeline(app, world):
    viewer = browser_for(app, _user_name(world, "viewer"))
    page = viewer.get(f"/cases/{world.woman}")
    assert page.status_code == 200
    text = page.text
    for heading in ("Person", "Case", "Victim", "Consent", "Trafficking episodes"):
        assert f">{heading}<" in text or f">{heading} <" in text, heading
    for heading in ("Movement events", "Perpetrators", "Support plans", "Assistance", "Timeline"):
        assert heading in text, heading
    assert "Mya" in text and "Myanmar (MMR)" in text  # values, on the case page only
    assert "Actual victim of trafficking" in text  # a code, as HTCDS labels it
    assert text.count('class="entry entry-') == 2
    assert "Created · version 1" in text and "Changed · version 2" in text
    assert "mini_follow_up" in text and "mini_screening" in text and "by Phone 1" in text
    # the follow-up changed the status: its field, and its value on this page
    change = text.split("Changed · version 2")[1].split("</li>")[0]
    assert '<dt title="cas_Status">Status</dt><dd>Closed</dd>' in change

    [viewed] = _events("case.view")
    assert (viewed.user_id, viewed.object_id, viewed.details) == (
        world.user_ids["viewer"],
        world.woman,
        {"via": "page"},
    )
    assert viewed.mission == "LOCAL" and viewed.address == "127.0.0.1"


@pytest.mark.parametrize("who", ["admin", "designer", "viewer"])
def test_readers_may_open_the_pages(app, world, who):
    reader = browser_for(app, _user_name(world, who))
    assert reader.get("/cases").status_code == 200
    assert reader.get(f"/cases/{world.man}").status_code == 200  # shared by KHM-PP
    assert b'href="/cases"' in reader.get("/forms").data


def test_collectors_may_not_and_anonymous_visitors_log_in_first(app, world, make, client):
    collector = browser_for(app, make.user("collector").name)
    assert collector.get("/cases").status_code == 403
    assert collector.get(f"/cases/{world.girl}").status_code == 403
    assert b'href="/cases"' not in collector.get("/forms").data
    for url in ("/cases", f"/cases/{world.girl}"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.location
    assert _events("case.view") == []


def test_a_case_out_of_scope_looks_like_no_case(app, world):
    case_row(world.girl).owner_mission = "MMR-YG"
    db.session.commit()
    admin = browser_for(app, _user_name(world, "admin"))
    hidden = admin.get(f"/cases/{world.girl}")
    unknown = admin.get("/cases/00000000-0000-0000-0000-000000000000")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.text == unknown.text
    assert f"/cases/{world.girl}" not in admin.get("/cases").text
    outsider = browser_for(app, _user_name(world, "outsider"))
    assert outsider.get(f"/cases/{world.woman}").status_code == 404  # another project
    assert _events("case.view") == []
    refused = [(e.user_id, e.object_id, e.details["via"]) for e in _events("case.refused")]
    assert refused == [
        (world.user_ids["admin"], world.girl, "page"),
        (world.user_ids["admin"], "00000000-0000-0000-0000-000000000000", "page"),
        (world.user_ids["outsider"], world.woman, "page"),
    ]
