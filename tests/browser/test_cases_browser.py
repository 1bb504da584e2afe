"""The case pages in a real browser: log in, list, filter, open a case, read its timeline;
at a phone's width and a desk's."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from server.auth.models import User
from server.extensions import db
from tests.browser.conftest import PHONE
from tests.cases_support import make_world
from tests.factories import PASSWORD

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright pip package is not installed"
)
expect = sync_api.expect


@pytest.fixture
def cases(make, client, runner):
    """The cases of tests.cases_support.make_world, and the viewer's name."""
    world = make_world(make, client, runner)
    viewer = db.session.get(User, world.user_ids["viewer"]).name
    return SimpleNamespace(world=world, viewer=viewer)


def _scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_a_viewer_filters_the_cases_and_reads_one_with_its_timeline(page, login, cases, screenshot):
    login(cases.viewer, PASSWORD)
    page.get_by_role("link", name="Cases").click()
    expect(page.get_by_role("heading", name="Cases", exact=True)).to_be_visible()
    expect(page.locator("#case-count")).to_have_text("3 cases")
    expect(page.locator("#cases tbody tr")).to_have_count(3)
    screenshot("cases-list")

    page.get_by_label("Gender").select_option("Feminine")
    page.get_by_label("Exploitation type").select_option("SexualExploitation")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#case-count")).to_have_text("1 case")
    expect(page.get_by_label("Gender")).to_have_value("Feminine")
    reference = f"CB-{cases.world.woman[:8]}"
    page.get_by_role("link", name=reference).click()

    expect(page).to_have_url(re.compile(f"/cases/{cases.world.woman}$"))
    expect(page.get_by_role("heading", name=f"Case {reference}")).to_be_visible()
    expect(page.get_by_role("heading", name="Person")).to_be_visible()
    timeline = page.locator("#timeline > li")
    expect(timeline).to_have_count(2)
    expect(timeline.nth(0)).to_contain_text("Created · version 1")
    expect(timeline.nth(0)).to_contain_text("mini_screening")
    expect(timeline.nth(1)).to_contain_text("Changed · version 2")
    expect(timeline.nth(1)).to_contain_text("Closed")
    screenshot("case-detail")

    page.set_viewport_size(PHONE)
    assert _scroll_width(page) <= PHONE["width"], "the case page scrolls sideways on a phone"
    page.go_back()
    assert _scroll_width(page) <= PHONE["width"], "the case list scrolls sideways on a phone"


def test_an_admin_reads_the_audit_log_of_those_views(page, login, cases, screenshot):
    admin = db.session.get(User, cases.world.user_ids["admin"]).name
    login(cases.viewer, PASSWORD)
    page.goto(f"/cases/{cases.world.girl}")
    page.context.clear_cookies()
    login(admin, PASSWORD)
    page.get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    page.get_by_label("Action").select_option("case.view")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(cases.viewer)
    expect(rows.first).to_contain_text(f"case {cases.world.girl[:8]}")
    screenshot("audit-log")
    page.set_viewport_size(PHONE)
    assert _scroll_width(page) <= PHONE["width"], "the audit page scrolls sideways on a phone"
