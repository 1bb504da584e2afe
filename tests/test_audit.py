"""The audit trail: what is recorded (and what never is), the audit page and its export."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from server import audit
from server.audit.models import AuditEvent
from server.extensions import db
from tests.admin_support import OUTSIDERS, assert_admins_only
from tests.factories import PASSWORD, simple_form_md, xlsx_from_md


def events(action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    db.session.expire_all()
    return list(db.session.scalars(query))


def as_text(event: AuditEvent) -> str:
    """Everything an event holds, to show what it does not."""
    columns = AuditEvent.__table__.columns
    return " ".join(str(getattr(event, c.key)) for c in columns)


def log_in(client, name: str, password: str = PASSWORD):
    return client.post("/login", data={"username": name, "password": password})


@pytest.fixture
def admin(app, make):
    """An admin and a test client logged in as them."""
    user = make.user("admin")
    client = app.test_client()
    assert log_in(client, user.name).status_code == 302
    return user, client


# ---- recording ------------------------------------------------------------------------------


def test_an_event_is_kept_or_dropped_with_its_transaction(app_context):
    audit.record("case.list", user_id=7, details={"total": 0})
    db.session.rollback()
    assert events() == []
    event = audit.record("case.view", user_id=7, object_type="case", object_id="abc")
    db.session.commit()
    assert events() == [event] and event.mission == "LOCAL" and event.at is not None


def test_an_unknown_action_is_refused(app_context):
    with pytest.raises(ValueError, match="Unknown audit action"):
        audit.record("case.peek")


def test_logins_are_recorded_without_the_typed_login_or_password(app, make, client, monkeypatch):
    user = make.user("viewer")
    assert log_in(client, user.name, "wrong password!").status_code == 401
    assert log_in(client, "sokha.chan@example.org", "Sokha's password").status_code == 401
    assert log_in(client, user.name).status_code == 302
    response = client.post("/v1/sessions", json={"email": user.name, "password": PASSWORD})
    assert response.status_code == 200

    wrong, unknown = events("login.failed")
    assert (wrong.user_id, wrong.details) == (
        user.id,
        {"via": "page", "reason": "refused", "known_account": True},
    )
    assert (unknown.user_id, unknown.details["known_account"]) == (None, False)
    page, api = events("login")
    assert (page.user_id, page.details, page.address) == (user.id, {"via": "page"}, "127.0.0.1")
    assert (api.user_id, api.details) == (user.id, {"via": "api"})
    for event in events():
        text = as_text(event)
        assert "sokha" not in text.lower() and "password" not in text and user.name not in text

    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 1)
    assert log_in(client, user.name, "wrong again").status_code == 401
    assert log_in(client, user.name).status_code == 429
    locked = client.post("/v1/sessions", json={"email": user.name, "password": PASSWORD})
    assert locked.status_code == 429
    reasons = [(e.details["via"], e.details["reason"]) for e in events("login.failed")[2:]]
    assert reasons == [("page", "refused"), ("page", "locked"), ("api", "locked")]


def test_publishing_a_form_is_recorded_on_the_page_and_the_api(admin, make):
    user, client = admin
    project = make.project()
    upload = {"file": (io.BytesIO(xlsx_from_md(simple_form_md("hh", "1"))), "hh.xlsx")}
    response = client.post(f"/projects/{project.id}/forms/upload", data=upload)
    assert response.status_code == 302
    draft = {"file": (io.BytesIO(xlsx_from_md(simple_form_md("hh", "2"))), "hh.xlsx")}
    client.post(f"/projects/{project.id}/forms/upload", data={**draft, "draft": "1"})
    assert len(events("form.publish")) == 1, "a draft is not published"
    assert client.post(f"/projects/{project.id}/forms/hh/draft/publish").status_code == 302
    token = client.post("/v1/sessions", json={"email": user.name, "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json['token']}"}
    api_upload = client.post(
        f"/v1/projects/{project.id}/forms?publish=true",
        data=xlsx_from_md(simple_form_md("other", "1")),
        headers={
            **bearer,
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "X-XlsForm-FormId-Fallback": "other",
        },
    )
    assert api_upload.status_code == 200, api_upload.json
    published = events("form.publish")
    assert [(e.details["xml_form_id"], e.details["version"]) for e in published] == [
        ("hh", "1"),
        ("hh", "2"),
        ("other", "1"),
    ]
    assert {e.user_id for e in published} == {user.id}
    assert {e.object_type for e in published} == {"form"}


WITH_LOGO = """
| survey   |        |        |         |          |
|          | type   | name   | label   | image    |
|          | note   | intro  | Welcome | logo.png |
| settings |        |        |         |          |
|          | form_id | version |        |          |
|          | welcome | 1      |         |          |
"""


def test_form_state_media_access_and_projects_changes_are_recorded(admin, make, runner):
    """Who closed a form, changed its media, gave a phone a form, made a project or turned on
    its encryption: on the page, the API and the command line."""
    user, client = admin
    project = make.project()
    form = make.form(WITH_LOGO, project=project)
    base = f"/projects/{project.id}/forms/welcome"
    client.post(f"{base}/state", data={"state": "closing"})
    client.post(f"{base}/state", data={"state": "closing"})  # no change: nothing recorded
    logo = {"media": (io.BytesIO(b"png"), "logo.png"), "target": "current"}
    assert client.post(f"{base}/media", data=logo).status_code == 302
    token = client.post("/v1/sessions", json={"email": user.name, "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json['token']}"}
    api_base = f"/v1/projects/{project.id}/forms/welcome"
    assert client.patch(api_base, json={"state": "closed"}, headers=bearer).status_code == 200
    phone = client.post(f"/projects/{project.id}/app-users", data={"display_name": "Phone"})
    assert phone.status_code == 302
    [made] = events("app_user.create")
    detail = f"/projects/{project.id}/app-users/{made.object_id}"
    client.post(detail, data={"form_id": str(form.id)})
    client.post(detail, data={"form_id": str(form.id)})  # no change: nothing recorded
    assignment = f"{api_base}/assignments/app-user/{made.object_id}"
    assert client.delete(assignment, headers=bearer).status_code == 200
    created = client.post("/v1/projects", json={"name": "Second"}, headers=bearer)
    passphrase = {"passphrase": "a passphrase long enough", "hint": "Sokha's birthday"}
    key_url = f"/v1/projects/{created.json['id']}/key"
    assert client.post(key_url, json=passphrase, headers=bearer).status_code == 200

    changes = [
        (e.action, e.object_type, e.object_id, e.details)
        for e in events()
        if e.action.startswith(("form.state", "form.media", "app_user.forms", "project."))
    ]
    form_ids = {"project_id": project.id, "xml_form_id": "welcome"}
    phone_ids = {"project_id": project.id}
    second = str(created.json["id"])
    assert changes == [
        ("form.state", "form", str(form.id), {**form_ids, "before": "open", "after": "closing"}),
        ("form.media", "form", str(form.id), {**form_ids, "files": ["logo.png"], "draft": False}),
        ("form.state", "form", str(form.id), {**form_ids, "before": "closing", "after": "closed"}),
        (
            "app_user.forms",
            "app_user",
            made.object_id,
            {**phone_ids, "granted": [form.id], "revoked": []},
        ),
        (
            "app_user.forms",
            "app_user",
            made.object_id,
            {**phone_ids, "granted": [], "revoked": [form.id]},
        ),
        ("project.create", "project", second, {}),
        ("project.key", "project", second, {"key_id": changes[-1][3]["key_id"], "via": "api"}),
    ]
    assert {e.user_id for e in events() if e.action.startswith(("form.", "project."))} == {user.id}
    assert "Sokha" not in " ".join(as_text(e) for e in events())

    cli = runner.invoke(
        args=["keys", "create", "--project", str(project.id)], input="another long passphrase\n"
    )
    assert cli.exit_code == 0, cli.output
    last = events("project.key")[-1]
    assert (last.user_id, last.object_id, last.details["via"]) == (None, str(project.id), "cli")


def test_app_users_made_and_revoked_are_recorded_without_their_names(admin, make):
    _, client = admin
    project = make.project()
    created = client.post(
        f"/projects/{project.id}/app-users", data={"display_name": "Sokha's phone"}
    )
    assert created.status_code == 302
    [made] = events("app_user.create")
    revoke = f"/projects/{project.id}/app-users/{made.object_id}/revoke"
    assert client.post(revoke).status_code == 302
    [revoked] = events("app_user.revoke")
    assert made.object_id == revoked.object_id and made.details == {"project_id": project.id}
    assert "Sokha" not in as_text(made) + as_text(revoked)


def test_each_showing_of_an_app_users_qr_code_is_recorded(admin, make):
    """The QR code carries the phone's key: who was shown it, and when, is kept."""
    _, client = admin
    project = make.project()
    client.post(f"/projects/{project.id}/app-users", data={"display_name": "Sokha's phone"})
    [made] = events("app_user.create")
    for kind in ("png", "svg"):
        image = client.get(f"/v1/projects/{project.id}/app-users/{made.object_id}/qr.{kind}")
        assert image.status_code == 200
    shown = events("app_user.qr")
    assert [e.object_id for e in shown] == [made.object_id] * 2
    assert all(e.details == {"project_id": project.id} for e in shown)
    assert "Sokha" not in "".join(as_text(e) for e in shown)


# ---- the page and its export ----------------------------------------------------------------


def test_the_page_lists_filters_and_pages_events_newest_first(admin, app_context, monkeypatch):
    user, client = admin
    for n in range(3):
        audit.record("case.view", user_id=user.id, object_type="case", object_id=f"case-{n}")
    audit.record("submission.retry", user_id=user.id, object_type="submission", object_id=5)
    db.session.commit()

    page = client.get("/admin/audit")
    assert page.status_code == 200
    text = page.text
    assert text.index("case-2") < text.index("case-1") < text.index("case-0")
    assert "submission 5" in text and 'href="/cases/case-2"' in text
    retries = client.get("/admin/audit", query_string={"action": "submission.retry"})
    assert "submission 5" in retries.text and "case-1" not in retries.text
    one = client.get("/admin/audit", query_string={"object_id": "case-1"})
    assert 'id="event-count">1 event<' in one.text
    assert client.get("/admin/audit", query_string={"since": "someday"}).status_code == 400

    monkeypatch.setattr("server.pages.audit.PAGE_SIZE", 2)
    paged = client.get("/admin/audit", query_string={"action": "case.view"})
    assert "Page 1 of 2" in paged.text and "case-0" not in paged.text
    older = client.get("/admin/audit", query_string={"action": "case.view", "page": 2})
    assert "case-0" in older.text

    viewed = events("audit.view")
    assert len(viewed) == 5 and viewed[1].details == {"action": "submission.retry"}


def test_the_export_is_csv_with_no_formulas_and_is_itself_recorded(admin, app_context):
    user, client = admin
    audit.record("case.list", user_id=user.id, details={"q": "=HYPERLINK(1)"})
    db.session.commit()

    response = client.get("/admin/audit.csv", query_string={"action": "case.list"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="audit-log.csv"'
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["action"] for r in rows] == ["case.list"]
    assert rows[0]["details"] == "q==HYPERLINK(1)"  # not at the start of the cell: inert
    assert rows[0]["user_id"] == str(user.id)

    everything = list(csv.DictReader(io.StringIO(client.get("/admin/audit.csv").text)))
    assert [r["action"] for r in everything][-1] == "audit.export"
    [first, second] = events("audit.export")
    assert first.details == {"action": "case.list", "format": "csv"}
    assert second.details == {"format": "csv"}
    assert client.get("/admin/audit.csv", query_string={"action": "peek"}).status_code == 400


def test_the_json_export_filters_by_action_user_and_date_and_is_recorded(admin, make, app_context):
    user, client = admin
    other = make.user("viewer")
    audit.record("case.view", user_id=user.id, object_type="case", object_id="c1")
    audit.record("case.view", user_id=other.id, object_type="case", object_id="c2")
    old = audit.record("case.view", user_id=other.id, object_type="case", object_id="c0")
    db.session.flush()
    old.at = old.at.replace(year=2020)
    db.session.commit()

    response = client.get(
        "/admin/audit.json", query_string={"action": "case.view", "user_id": other.id}
    )
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == 'attachment; filename="audit-log.json"'
    assert response.headers["Cache-Control"] == "no-store"
    assert [e["object_id"] for e in response.json] == ["c2", "c0"]  # in recording order
    assert response.json[1]["details"] == {} and response.json[1]["user_id"] == other.id
    recent = client.get(
        "/admin/audit.json", query_string={"action": "case.view", "since": "2021-01-01"}
    )
    assert [e["object_id"] for e in recent.json] == ["c1", "c2"]
    until = client.get("/admin/audit.csv", query_string={"until": "2020-12-31"})
    assert [r["object_id"] for r in csv.DictReader(io.StringIO(until.text))] == ["c0"]
    exports = events("audit.export")
    assert [e.details["format"] for e in exports] == ["json", "json", "csv"]
    assert exports[0].details == {"action": "case.view", "user_id": str(other.id), "format": "json"}
    assert client.get("/admin/audit.json", query_string={"until": "soon"}).status_code == 400
    assert client.get("/admin/audit.xml").status_code == 404


def test_one_pager_for_every_list_keeps_the_filters(app):
    template = app.jinja_env.from_string(
        '{% from "_paging.html" import pager %}{{ pager(endpoint, given, number, pages) }}'
    )
    with app.test_request_context():
        middle = template.render(
            endpoint="pages.cases_list", given={"status": "open", "q": ""}, number=2, pages=3
        )
        alone = template.render(endpoint="pages.audit_page", given={}, number=1, pages=1)
    assert 'rel="prev" href="/cases?page=1&amp;status=open"' in middle
    assert 'rel="next" href="/cases?page=3&amp;status=open"' in middle
    assert "Page 2 of 3" in middle and "q=" not in middle
    assert alone.strip() == ""


def test_formula_cells_are_quoted():
    from server.audit.operations import _csv_line

    assert _csv_line(["=1+1", "+x", "-y", "@z", "ok"]) == "'=1+1,'+x,'-y,'@z,ok\r\n"


@pytest.mark.parametrize("outsider", OUTSIDERS)
def test_only_admins_see_the_audit_log(app, make, outsider):
    urls = [("get", "/admin/audit"), ("get", "/admin/audit.csv"), ("get", "/admin/audit.json")]
    assert_admins_only(app, make, outsider, urls, nav_link="/admin/audit")
    assert events("audit.export") == events("audit.view") == []
