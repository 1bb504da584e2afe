"""The queue page in a real browser: a phone's submission appears and turns normalized
without a reload; a failed one is retried; it fits a phone and a desk."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from redis import Redis
from rq import Queue

from server.worker import CaseBridgeWorker
from tests.browser.conftest import PHONE
from tests.cases_support import SCREENING_MD, drain, screening_xml
from tests.factories import PASSWORD, app_user_with_forms
from tests.openrosa_clients import CollectClient

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright pip package is not installed"
)
expect = sync_api.expect


@pytest.fixture
def mission(app, make, monkeypatch):
    """An admin, the screening form and a phone's app-user URL; the page polls every second
    and a job's first failure is final (no retries to wait for)."""
    monkeypatch.setitem(app.config, "QUEUE_PAGE_POLL_SECONDS", 1)
    monkeypatch.setitem(app.config, "JOB_RETRY_INTERVALS", [])
    project = make.project()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    admin = make.user("admin", projects=[project])
    return SimpleNamespace(admin=admin.name, phone_url=f"/v1/key/{token}/projects/{project.id}")


@pytest.fixture
def phone(live_server, mission):
    """phone(): send one screening as ODK Collect does, over HTTP to the live server."""

    def submit() -> None:
        with CollectClient(live_server + mission.phone_url) as collect:
            collect.submit(screening_xml()[0])
            assert collect.last_ok, collect.last_error

    return submit


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


def _count(page, state: str):
    return page.locator(f'#by-form td[data-state="{state}"]')


def test_a_submission_appears_and_turns_normalized_without_a_reload(
    page, login, mission, phone, runner, screenshot, csp_violations, redis_url
):
    login(mission.admin, PASSWORD)
    page.get_by_role("link", name="Queue").click()
    expect(page.get_by_role("heading", name="Submission queue")).to_be_visible()
    expect(page.get_by_text("No submissions yet.")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    phone()
    expect(_count(page, "queued")).to_have_text("1")
    expect(page.locator("#oldest-waiting-detail")).to_contain_text("mini_screening · queued")
    expect(page.locator("#last-hour")).to_have_text("1")
    expect(page.locator("#chart rect.bar")).to_have_count(1)

    drain(runner)
    expect(_count(page, "normalized")).to_have_text("1")
    expect(_count(page, "queued")).to_have_text("0")
    expect(page.locator("#oldest-waiting")).to_have_text("none")
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"

    connection = Redis.from_url(redis_url)
    worker = CaseBridgeWorker([Queue("submissions", connection=connection)], connection=connection)
    worker.register_birth()  # a worker that waits for work, as `casebridge worker` does
    worker.set_state("idle")
    try:
        expect(page.locator("#workers tr")).to_contain_text(worker.name)
        expect(page.locator('#workers td[data-label="State"]')).to_have_text("idle")
        expect(page.locator("#workers-total")).to_have_text("1")
        assert csp_violations == []
        screenshot("queue-normalized")
    finally:
        worker.register_death()


def test_a_failed_submission_is_retried_from_the_page(
    page, login, mission, phone, runner, screenshot, monkeypatch, csp_violations
):
    login(mission.admin, PASSWORD)
    page.goto("/admin/queue")
    page.evaluate("window.notReloaded = true")

    with monkeypatch.context() as patch:
        patch.setattr("server.cases.operations._derive", _broken)
        phone()
        drain(runner)
    failed = page.locator("#failed tr[data-submission]")
    expect(failed).to_have_count(1)
    expect(failed.locator('td[data-label="Error"]')).to_have_text(
        "RuntimeError while normalizing; see the worker log."
    )
    expect(page.locator("#failed-total")).to_have_text("1")
    assert page.evaluate("window.notReloaded") is True
    screenshot("queue-failed")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    failed.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash-success")).to_contain_text("is queued again")
    expect(page.get_by_text("No failed submissions.")).to_be_visible()
    expect(_count(page, "queued")).to_have_text("1")

    page.evaluate("window.notReloaded = true")
    drain(runner)
    expect(_count(page, "normalized")).to_have_text("1")
    expect(_count(page, "failed")).to_have_text("0")
    assert page.evaluate("window.notReloaded") is True
    assert csp_violations == []


def test_discard_asks_first(page, login, mission, phone, runner, monkeypatch):
    login(mission.admin, PASSWORD)
    with monkeypatch.context() as patch:
        patch.setattr("server.cases.operations._derive", _broken)
        phone()
        drain(runner)
    page.goto("/admin/queue")
    discard = page.locator("#failed").get_by_role("button", name="Discard")

    page.once("dialog", lambda dialog: dialog.dismiss())
    discard.click()
    expect(discard).to_be_visible()  # dismissed: nothing happened
    expect(_count(page, "failed")).to_have_text("1")

    page.once("dialog", lambda dialog: dialog.accept())
    discard.click()
    expect(page.locator(".flash-success")).to_contain_text("was discarded")
    expect(_count(page, "discarded")).to_have_text("1")
    expect(page.get_by_text("No failed submissions.")).to_be_visible()


def _broken(*args, **kwargs):
    raise RuntimeError("normalization broke")
