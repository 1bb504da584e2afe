"""The Sync and Users pages in a real browser: retry a peer's dead-lettered change and see
it pending; create a user and see the one-time password; reset a password, which logs that
user's open browser out, and export the audit log's record of it; all fit a phone and a
desk."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from server.extensions import db
from sync.models import SyncInboxChange, SyncOutbox
from tests.browser.conftest import PHONE
from tests.factories import PASSWORD
from tests.sync_support import mission, new_key, use_missions

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright pip package is not installed"
)
expect = sync_api.expect


@pytest.fixture
def admin(make):
    return make.user("admin", name="sara")


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


@pytest.fixture
def peers(app, app_context, tmp_path, monkeypatch):
    """This node is THA, linked to KHM and MMR; the sync page polls every second."""
    monkeypatch.setitem(app.config, "QUEUE_PAGE_POLL_SECONDS", 1)
    use_missions(
        monkeypatch,
        app,
        tmp_path,
        "THA",
        [mission("THA", new_key()), mission("KHM", new_key()), mission("MMR", new_key())],
    )


def change(recipient: str, state: str, error: str | None = None) -> None:
    db.session.add(
        SyncOutbox(
            change_id=str(uuid.uuid4()),
            case_uuid=str(uuid.uuid4()),
            recipient_mission=recipient,
            origin_mission="THA",
            version=1,
            kind="upsert",
            payload={},
            state=state,
            attempts=10 if state == "dead" else 0,
            last_error=error,
        )
    )
    db.session.commit()


def received(sender: str) -> None:
    db.session.add(
        SyncInboxChange(
            change_id=str(uuid.uuid4()),
            sender_mission=sender,
            origin_mission=sender,
            case_uuid=str(uuid.uuid4()),
            version=1,
            kind="upsert",
            payload={},
        )
    )
    db.session.commit()


def test_a_dead_lettered_change_is_retried_from_the_sync_page(
    page, login, admin, peers, screenshot, csp_violations
):
    change("KHM", "acked")
    change("KHM", "dead", "unreachable: [Errno 111] Connection refused")
    received("MMR")
    login(admin.name, PASSWORD)
    page.get_by_role("link", name="Sync").click()
    expect(page.get_by_role("heading", name="Sync with linked missions")).to_be_visible()
    khm = page.locator('#peers tr[data-peer="KHM"]')
    expect(khm.locator('td[data-label="Dead"]')).to_have_text("1")
    expect(khm.locator('td[data-label="Last error"]')).to_contain_text("unreachable")
    expect(page.locator("#incoming")).to_contain_text("MMR")

    page.evaluate("window.notReloaded = true")
    change("MMR", "pending")  # arrives while the page is open
    mmr = page.locator('#peers tr[data-peer="MMR"]')
    expect(mmr.locator('td[data-label="Pending"]')).to_have_text("1")
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"
    screenshot("sync-dead")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    khm.get_by_role("button", name="Retry 1").click()
    expect(page.locator(".flash-success")).to_contain_text("1 change(s) to KHM will be sent again")
    expect(khm.locator('td[data-label="Dead"]')).to_have_text("0")
    expect(khm.locator('td[data-label="Pending"]')).to_have_text("1")
    expect(khm.get_by_role("button")).to_have_count(0)
    expect(page.locator("#dead-total")).to_have_text("0")
    assert csp_violations == []
    screenshot("sync-retried")


def test_an_admin_creates_a_user_and_sees_the_password_once(
    page, login, admin, make, screenshot, csp_violations
):
    make.project()
    make.user("viewer", name="lina")
    login(admin.name, PASSWORD)
    page.get_by_role("link", name="Users", exact=True).click()
    expect(page.get_by_role("heading", name="Users & roles")).to_be_visible()
    screenshot("users-list")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_label("Name").fill("amina")
    page.get_by_label("Role").select_option("collector")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", name="Password, shown once")).to_be_visible()
    password = page.locator("#new-password").text_content()
    assert len(password) >= 15
    expect(page.locator(".flash-success")).to_contain_text("User 'amina' created as collector")
    screenshot("users-created")

    page.get_by_role("link", name="← All users").click()
    expect(page.locator("#users")).to_contain_text("amina")
    page.get_by_role("link", name="amina").click()  # the user's page, by GET: no password
    expect(page.get_by_role("heading", name="amina")).to_be_visible()
    expect(page.get_by_text(password)).to_have_count(0)
    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator(".flash-success")).to_contain_text("deactivated")
    expect(page.get_by_role("button", name="Reactivate")).to_be_visible()
    assert csp_violations == []


def test_a_password_reset_logs_out_the_users_open_browser_and_the_audit_log_exports_it(
    page, browser, live_server, login, admin, make, screenshot, csp_violations
):
    lina = make.user("viewer", name="lina")
    theirs = browser.new_context(base_url=live_server, viewport=PHONE)
    try:
        their_page = theirs.new_page()
        their_page.goto("/login")
        their_page.get_by_label("User name or email").fill("lina")
        their_page.get_by_label("Password").fill(PASSWORD)
        their_page.get_by_role("button", name="Log in").click()
        their_page.wait_for_url("**/forms")

        login(admin.name, PASSWORD)
        page.goto(f"/admin/users/{lina.id}")
        page.get_by_role("button", name="Reset password").click()
        expect(page.get_by_role("heading", name="Password, shown once")).to_be_visible()

        their_page.goto("/cases")
        expect(their_page).to_have_url(re.compile(r"/login\?next="))
        expect(their_page.get_by_role("button", name="Log in")).to_be_visible()
    finally:
        theirs.close()

    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Action").select_option("user.password_reset")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#events tbody tr")).to_have_count(1)
    screenshot("audit-filtered-export")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON").click()
    exported = json.loads(Path(download.value.path()).read_text())
    assert [(e["action"], e["object_id"]) for e in exported] == [
        ("user.password_reset", str(lina.id))
    ]
    assert csp_violations == []
