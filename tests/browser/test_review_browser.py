"""The review queue in a real browser: a case THA sent may be a person this mission (KHM)
registered before; the admin sees the count arrive on the sync page, opens the queue,
accepts the possible duplicate (after a confirm), and finds the case linked to the person
it had, and the decision in the audit log. A transfer from THA accepted for the person it
is; a case referred, then the referral revoked, from the case page on a phone. Fits a
phone and a desk."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.extensions import db
from sync.models import SyncReview, SyncTransfer
from tests.browser.conftest import PHONE
from tests.factories import PASSWORD
from tests.test_sync_apply_linkage import (  # noqa: F401 - fixtures used by name
    registered,
    secret,
    tha_key,
)
from tests.test_sync_review import proposed  # noqa: F401 - a fixture used by name
from tests.test_sync_transfers import (  # noqa: F401 - fixtures used by name
    as_khm,
    as_tha,
    keys,
    new_case,
    received,
)

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright pip package is not installed"
)
expect = sync_api.expect


@pytest.fixture
def csp_violations(page):
    seen: list[str] = []
    page.on(
        "console",
        lambda message: (
            seen.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return seen


def scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_an_admin_accepts_a_possible_duplicate(
    app,
    page,
    login,
    make,
    proposed,  # noqa: F811
    registered,  # noqa: F811
    screenshot,
    csp_violations,
    monkeypatch,
):
    monkeypatch.setitem(app.config, "QUEUE_PAGE_POLL_SECONDS", 1)
    admin = make.user("admin", name="sara")
    login(admin.name, PASSWORD)
    page.get_by_role("link", name="Sync").click()
    expect(page.locator("#review-open")).to_have_text("1")

    page.evaluate("window.notReloaded = true")
    other = SyncReview(kind="conflict", case_uuid=registered.cases[0].uuid, reason="cas_Status")
    db.session.add(other)  # another part of sync opens one while the page is open
    db.session.commit()
    expect(page.locator("#review-open")).to_have_text("2")
    expect(page.locator('[data-review-kind="conflict"]')).to_have_text("1")
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"
    screenshot("sync-review-count")

    page.get_by_role("link", name="Open the review queue", exact=True).click()
    expect(page.get_by_role("heading", name="Review queue", exact=True)).to_be_visible()
    item = page.locator(f"#review-{proposed.id}")
    expect(item).to_contain_text("Possible duplicate")
    expect(item).to_contain_text(f"Person #{registered.id}")
    expect(item.get_by_role("link", name=registered.cases[0].uuid[:8])).to_be_visible()
    expect(page.locator(f"#review-{other.id}")).to_contain_text("Conflict")
    body = page.locator("main").inner_text()
    assert "Sreypov" not in body and "Chhorn" not in body, "no names in the queue"
    screenshot("review-queue")
    page.set_viewport_size(PHONE)
    assert scroll_width(page) <= PHONE["width"], "the review queue scrolls sideways on a phone"

    accept = item.get_by_role("button", name="Accept")
    page.once("dialog", lambda dialog: dialog.dismiss())
    accept.click()
    expect(accept).to_be_visible()  # dismissed: nothing happened
    assert db.session.get(SyncReview, proposed.id).state == "open"

    page.once("dialog", lambda dialog: dialog.accept())
    accept.click()
    expect(page.locator(".flash-success")).to_contain_text(
        f"the case now belongs to person #{registered.id}"
    )
    expect(page.locator(f"#review-{proposed.id}")).to_have_count(0)
    expect(page.locator(f"#review-{other.id}")).to_be_visible()
    screenshot("review-accepted")

    page.goto(f"/cases/{proposed.case_uuid}")  # the case THA sent, now of KHM's person
    expect(page.locator(".badge.warn")).to_have_text("re-trafficked")
    expect(page.locator("main")).to_contain_text("Sreypov")

    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Action").select_option("review.accept")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#events tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("sara")
    assert csp_violations == []


def test_an_admin_accepts_a_transfer_choosing_the_person_it_is(
    page,
    login,
    make,
    received,  # noqa: F811
    registered,  # noqa: F811
    screenshot,
    csp_violations,
):
    """KHM's admin finds THA's transfer in the queue (the encoding matched a person KHM
    registered), says it is that person, and accepts."""
    admin = make.user("admin", name="dara")
    login(admin.name, PASSWORD)
    page.goto("/admin/sync/review")
    transfer_link = page.get_by_role("navigation", name="Kinds of items").get_by_role(
        "link", name="Pending transfers"
    )
    expect(transfer_link.locator(".badge")).to_have_text("1")
    transfer_link.click()
    item = page.locator('[data-kind="transfer"]')
    expect(item).to_contain_text("From mission")
    expect(item).to_contain_text("THA")
    expect(item).to_contain_text("Services closer to where the person is")
    expect(item).to_contain_text("not here yet")
    expect(item.get_by_role("link", name=registered.cases[0].uuid[:8])).to_be_visible()
    body = page.locator("main").inner_text()
    assert not any(name in body for name in ("Sreypov", "Chhorn", "Srey", "Chorn"))
    item.get_by_label(f"Person #{registered.id}").check()
    screenshot("review-transfer")
    page.set_viewport_size(PHONE)
    assert scroll_width(page) <= PHONE["width"], "the transfer item scrolls sideways on a phone"

    page.once("dialog", lambda dialog: dialog.accept())
    item.get_by_role("button", name="Accept").click()
    expect(page.locator(".flash-success")).to_contain_text("THA hands the case over")
    expect(page.locator('[data-kind="transfer"]')).to_have_count(0)
    screenshot("review-transfer-accepted")
    db.session.expire_all()
    transfer = db.session.scalar(select(SyncTransfer))
    assert (transfer.state, transfer.person_id) == ("accepted", registered.id)
    assert csp_violations == []


@pytest.mark.usefixtures("as_tha")
def test_an_admin_refers_a_case_from_its_page_on_a_phone(page, login, make, screenshot):
    case = new_case(make)
    admin = make.user("admin", name="somchai")
    login(admin.name, PASSWORD)
    page.set_viewport_size(PHONE)
    page.goto(f"/cases/{case.uuid}")
    form = page.locator("#transfer-form")
    form.get_by_label("Refer (shared; this mission keeps it)").check()
    form.get_by_label("To mission").select_option("MMR")
    form.get_by_label("Reason").select_option("legal")
    assert scroll_width(page) <= PHONE["width"], "the case page scrolls sideways on a phone"
    page.once("dialog", lambda dialog: dialog.accept())
    form.get_by_role("button", name="Send request").click()
    expect(page.locator(".flash-success")).to_contain_text("Referral asked of MMR")
    row = page.locator("ul.transfers .transfer")
    expect(row).to_contain_text("Referral THA → MMR")
    expect(row).to_contain_text("pending")
    screenshot("case-referral-pending")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash-success")).to_contain_text("Referral to MMR revoked.")
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
