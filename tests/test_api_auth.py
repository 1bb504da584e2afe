"""Sessions, projects and who may change forms."""

from __future__ import annotations

import pytest

from tests.factories import (
    PASSWORD,
    csrf_protected_client,
    csrf_token,
    simple_form_md,
    xlsx_from_md,
)


def _login(client, user, password=PASSWORD):
    return client.post("/v1/sessions", json={"email": user.name, "password": password})


def test_session_token_like_central(client, make):
    admin = make.user("admin")
    response = _login(client, admin)
    assert response.status_code == 200
    assert set(response.json) >= {"token", "csrf", "createdAt", "expiresAt"}
    auth = {"Authorization": f"Bearer {response.json['token']}"}
    assert client.get("/v1/users/current", headers=auth).json["displayName"] == admin.name
    projects = client.get("/v1/projects", headers=auth).json
    assert projects[0]["name"] == "Default project"
    assert set(projects[0]) >= {"id", "name", "description", "archived", "createdAt", "keyId"}
    assert client.delete("/v1/sessions/current", headers=auth).status_code == 200
    assert client.get("/v1/users/current", headers=auth).status_code == 401


def test_wrong_password_is_401(client, make):
    user = make.user("designer")
    response = _login(client, user, "wrong password!")
    assert response.status_code == 401
    assert response.json["code"] == 401.2


def test_no_token_is_401(client):
    assert client.get("/v1/projects").status_code == 401


@pytest.mark.parametrize("role", ["collector", "viewer"])
def test_only_designers_and_admins_publish(client, make, role):
    user = make.user(role)
    token = _login(client, user).json["token"]
    response = client.post(
        "/v1/projects/1/forms",
        data=xlsx_from_md(simple_form_md()),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
    )
    assert response.status_code == 403


def test_projects_of_others_are_invisible(client, make):
    make.project()  # the default project comes first
    other = make.project("Elsewhere")
    designer = make.user("designer")  # member of the default project only
    token = _login(client, designer).json["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert [p["name"] for p in client.get("/v1/projects", headers=auth).json] == ["Default project"]
    assert client.get(f"/v1/projects/{other.id}", headers=auth).status_code == 404
    assert client.get(f"/v1/projects/{other.id}/forms", headers=auth).status_code == 404


def test_admin_creates_projects(client, make):
    admin = make.user("admin")
    auth = {"Authorization": f"Bearer {_login(client, admin).json['token']}"}
    created = client.post("/v1/projects", json={"name": "Mission THA"}, headers=auth)
    assert created.status_code == 200
    assert created.json["name"] == "Mission THA"


def test_login_page_and_logout(client, make):
    user = make.user("designer")
    assert client.get("/forms").status_code == 302
    page = client.get("/login")
    assert page.status_code == 200 and "Log in" in page.text
    wrong = client.post("/login", data={"username": user.name, "password": "nope nope nope"})
    assert wrong.status_code == 401 and "Incorrect" in wrong.text
    right = client.post("/login", data={"username": user.name, "password": PASSWORD})
    assert right.status_code == 302
    assert client.get("/forms").status_code == 200
    client.post("/logout")
    assert client.get("/forms").status_code == 302


def test_pages_send_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_repeated_wrong_passwords_lock_the_login_for_a_while(client, make, app):
    user = make.user("designer")
    app.config["LOGIN_MAX_FAILURES"] = 3
    try:
        for _ in range(3):
            assert _login(client, user, "wrong password!").status_code == 401
        assert _login(client, user).status_code == 429  # even the right password, for now
        page = client.post("/login", data={"username": user.name, "password": PASSWORD})
        assert page.status_code == 429 and "Too many" in page.text
    finally:
        app.config["LOGIN_MAX_FAILURES"] = 10


def test_pages_refuse_a_post_without_the_csrf_token(make, app):
    user = make.user("designer")
    with csrf_protected_client(app) as client:
        response = client.post("/login", data={"username": user.name, "password": PASSWORD})
        assert response.status_code == 400  # CSRF token missing
        token = csrf_token(client.get("/login").text)
        ok = client.post(
            "/login", data={"username": user.name, "password": PASSWORD, "csrf_token": token}
        )
        assert ok.status_code == 302
