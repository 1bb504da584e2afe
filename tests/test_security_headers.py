"""The security basics every answer carries: headers, the session cookie, no caching of
anything a logged-in user is shown, password hashes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.extensions import db
from server.submissions.models import Submission
from tests.admin_support import log_in
from tests.cases_support import case_row, make_world
from tests.factories import PASSWORD, csrf_protected_client

#: Pages of each kind: open, a list of people's cases, admin pages, JSON for a page's script.
PAGES = ("/login", "/forms", "/cases", "/admin/queue", "/admin/queue.json", "/admin/audit")


@pytest.mark.parametrize("url", PAGES)
def test_every_page_sends_the_security_headers(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 200
    headers = response.headers
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "object-src 'none'" in policy and "form-action 'self'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in headers, "plain http: no HSTS"
    if url != "/login":
        assert headers["Cache-Control"] == "no-store"


def test_pages_carry_no_inline_script_or_style(admin_client):
    """What the policy forbids is not written either: a page would break in a browser."""
    for url in PAGES:
        if url.endswith(".json"):
            continue
        text = admin_client.get(url).text
        assert "<script>" not in text and " style=" not in text and " onclick=" not in text


def test_anything_shown_to_a_logged_in_user_is_not_cached(app, make, client, runner):
    """Cases and submissions read through the API are people's data as much as the pages."""
    world = make_world(make, client, runner)
    bearer = {"Authorization": f"Bearer {world.tokens['viewer']}"}
    submission = db.session.scalar(
        select(Submission).where(Submission.case_id == case_row(world.girl).id)
    )
    xml_url = (
        f"/v1/projects/{world.project_id}/forms/{submission.form.xml_form_id}"
        f"/submissions/{submission.instance_id}.xml"
    )
    for url in ("/v1/cases", f"/v1/cases/{world.girl}", xml_url):
        response = client.get(url, headers=bearer)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "no-store", url
    with client.get("/static/style.css", headers=bearer) as style:
        assert "no-store" not in style.headers.get("Cache-Control", "")


def test_over_https_hsts_is_sent_and_the_session_cookie_is_secure(app, make):
    admin = make.user("admin")
    client = app.test_client()
    https = {"base_url": "https://casebridge.test"}
    response = client.post("/login", data={"username": admin.name, "password": PASSWORD}, **https)
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_behind_a_trusted_https_proxy_hsts_is_sent(app, make):
    with csrf_protected_client(app, TRUST_PROXY=True) as client:
        behind = client.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert behind.headers["Strict-Transport-Security"] == "max-age=31536000"
        assert "Strict-Transport-Security" not in client.get("/login").headers


def test_over_http_the_session_cookie_is_httponly_and_lax(app, make):
    admin = make.user("admin")
    response = log_in(app.test_client(), admin.name)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_the_production_config_makes_the_session_cookie_secure_even_over_http(app):
    """Production sits behind https: the cookie (here: the login page's, holding the CSRF
    token) is never sent back in clear, whatever the proxy says."""
    with csrf_protected_client(app, config="production") as client:
        cookie = client.get("/login").headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_passwords_are_stored_as_scrypt_hashes(make):
    assert make.user("admin").password_hash.startswith("scrypt:")


def test_a_change_through_the_api_with_the_login_cookie_needs_the_csrf_token(app, make):
    """The API is CSRF-exempt for bearer tokens; a browser's cookie is not a bearer token."""
    admin = make.user("admin")
    with csrf_protected_client(app, admin.name) as client:
        assert client.get("/v1/projects").status_code == 200  # reading needs no token
        refused = client.post("/v1/projects", json={"name": "Made by another site"})
        assert refused.status_code == 400
        token = client.get("/forms").text.split('name="csrf_token" value="')[1].split('"')[0]
        made = client.post("/v1/projects", json={"name": "Mine"}, headers={"X-CSRFToken": token})
        assert made.status_code == 200
        login = app.test_client().post(
            "/v1/sessions", json={"email": admin.name, "password": PASSWORD}
        )
        bearer = {"Authorization": f"Bearer {login.json['token']}"}
        with_token = client.post("/v1/projects", json={"name": "Scripted"}, headers=bearer)
        assert with_token.status_code == 200  # a bearer token is not sent by a browser
        names = [p["name"] for p in client.get("/v1/projects", headers=bearer).json]
        assert "Made by another site" not in names and {"Mine", "Scripted"} <= set(names)
