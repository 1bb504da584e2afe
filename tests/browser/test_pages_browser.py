"""The HTML pages in a real browser: log in, upload (broken and valid), preview, state, layout."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from tests.browser.conftest import PHONE
from tests.factories import PASSWORD, simple_form_md, xlsx_from_md

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright pip package is not installed"
)
expect = sync_api.expect

BROKEN = """
| survey |           |        |           |
|        | type      | name   | label     |
|        | text      | a      | A         |
|        | textt     | b      | B         |
"""


@pytest.fixture
def designer(make):
    """A designer in a fresh project; name and project_id are read now, as plain values."""
    project = make.project("Field mission")
    user = make.user(role="designer", projects=[project])
    return SimpleNamespace(name=user.name, project_id=project.id, project=project)


def _xlsx(tmp_path, name: str, markdown: str):
    path = tmp_path / name
    path.write_bytes(xlsx_from_md(markdown))
    return path


def _upload(page, project_id: int, path) -> None:
    page.goto(f"/projects/{project_id}/forms/upload")
    page.get_by_label("XLSForm (.xlsx, .xls, .csv) or XForm (.xml)").set_input_files(path)
    page.get_by_role("button", name="Upload").click()
    page.wait_for_load_state()


def _scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_designer_logs_in_and_lands_on_the_forms_list(page, login, designer, screenshot):
    name = designer.name
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    screenshot("login")

    login(name, PASSWORD)

    expect(page.get_by_role("heading", name="Forms", exact=True)).to_be_visible()
    expect(page.locator(".topbar .who")).to_have_text(f"{name} (designer)")
    expect(page.get_by_role("link", name="Upload a form")).to_be_visible()
    screenshot("forms-list-empty")


def test_broken_xlsform_shows_sheet_row_column_and_publishes_nothing(
    page, login, designer, tmp_path, screenshot
):
    name, project_id = designer.name, designer.project_id
    login(name, PASSWORD)

    _upload(page, project_id, _xlsx(tmp_path, "broken.xlsx", BROKEN))

    problems = page.get_by_role("alert")
    expect(problems).to_contain_text("The form was not published")
    cells = problems.locator("tbody tr").first.locator("td")
    expect(cells.nth(0)).to_have_text("survey")
    expect(cells.nth(1)).to_have_text("3")
    expect(cells.nth(2)).to_have_text("type")
    expect(cells.nth(3)).to_contain_text("textt")
    screenshot("upload-with-errors")

    page.get_by_role("link", name="Forms", exact=True).click()
    expect(page.get_by_text("No forms yet.")).to_be_visible()
    expect(page.locator("table.list")).to_have_count(0)


def test_bilingual_form_preview_language_and_state(page, login, designer, tmp_path, screenshot):
    name, project_id = designer.name, designer.project_id
    login(name, PASSWORD)

    _upload(page, project_id, _xlsx(tmp_path, "household.xlsx", simple_form_md(version="7")))

    expect(page).to_have_url(f"/projects/{project_id}/forms/household")
    expect(page.locator(".flash-success")).to_have_text("Version 7 published.")
    expect(page.get_by_role("heading", name="Household", exact=True)).to_be_visible()
    expect(page.locator('td[data-label="Version"]')).to_contain_text("7")
    expect(page.get_by_role("heading", name="Preview of version 7")).to_be_visible()
    labels = page.locator(".preview .q-label")
    expect(labels).to_have_text(["What is it?", "Is it ok?"])
    expect(page.locator(".preview .choices li")).to_have_text(["Yes", "No"])
    screenshot("form-detail")

    page.get_by_role("navigation", name="Language").get_by_role("link", name="French").click()
    expect(page).to_have_url(re.compile(r"[?&]lang=French"))
    expect(labels).to_have_text(["Qu'est-ce ?", "Est-ce bon ?"])
    expect(page.locator(".preview .choices li")).to_have_text(["Oui", "Non"])

    badge = page.locator("p.muted .badge")
    expect(badge).to_have_text("open")
    page.get_by_label("Form state").select_option("closing")
    page.get_by_role("button", name="Change state").click()
    expect(page.locator(".flash-success")).to_have_text("The form is now closing.")
    expect(badge).to_have_text("closing")
    expect(badge).to_have_class("badge state-closing")

    page.get_by_role("link", name="Forms", exact=True).click()
    expect(page.locator('td[data-label="State"]')).to_have_text("closing")
    screenshot("forms-list")


def test_upload_and_detail_pages_fit_a_phone_without_horizontal_scroll(
    page, login, designer, tmp_path, make
):
    name, project_id = designer.name, designer.project_id
    make.form(simple_form_md(form_id="phone_form"), project=designer.project)
    login(name, PASSWORD)
    page.set_viewport_size(PHONE)

    page.goto(f"/projects/{project_id}/forms/upload")
    assert _scroll_width(page) <= PHONE["width"], "upload page scrolls sideways"

    _upload(page, project_id, _xlsx(tmp_path, "broken.xlsx", BROKEN))
    expect(page.get_by_role("alert")).to_be_visible()
    assert _scroll_width(page) <= PHONE["width"], "upload page with errors scrolls sideways"

    page.goto(f"/projects/{project_id}/forms/phone_form")
    expect(page.locator(".preview .q-label").first).to_be_visible()
    assert _scroll_width(page) <= PHONE["width"], "form detail page scrolls sideways"


GROUPED = """
|          | begin_group        | g      | Group              | Groupe   |
|          | text               | inner  | Inside?            | Dedans ? |
|          | end_group          | g      |                    |          |
"""


def test_preview_indents_groups_without_csp_violations(page, login, designer, make):
    make.form(simple_form_md(form_id="grouped", extra=GROUPED), project=designer.project)
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    login(designer.name, PASSWORD)
    page.goto(f"/projects/{designer.project_id}/forms/grouped")

    inner = page.locator(".preview .item").filter(has_text="Inside?")
    outer = page.locator(".preview .item").filter(has_text="What is it?")
    expect(inner).to_be_visible()
    assert violations == []
    padding = "el => parseFloat(getComputedStyle(el).paddingLeft)"
    assert inner.evaluate(padding) > outer.evaluate(padding) > 0


def test_app_user_page_shows_a_scannable_qr_code(page, login, designer, make, screenshot):
    make.form(simple_form_md(), project=designer.project)
    login(designer.name, PASSWORD)
    page.goto(f"/projects/{designer.project_id}/app-users")
    page.get_by_label("Name of the phone or team").fill("Team North")
    page.get_by_role("button", name="Create app user").click()
    expect(page.get_by_role("heading", name="Team North")).to_be_visible()
    page.get_by_label(re.compile("Household")).check()
    page.get_by_role("button", name="Save forms").click()
    expect(page.get_by_text("Forms saved.")).to_be_visible()
    qr = page.get_by_alt_text("QR code to configure ODK Collect")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.naturalWidth") > 100  # the PNG loaded
    page.set_viewport_size(PHONE)
    assert _scroll_width(page) <= PHONE["width"]
    screenshot("app-user-qr")
