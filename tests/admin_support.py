"""What every admin page owes everyone else: a 403 for each other role, the login page for
an anonymous visitor, and no link to it in their navigation."""

from __future__ import annotations

from tests.factories import PASSWORD

#: Who must not get in: anonymous visitors and every role but admin.
OUTSIDERS = ("anonymous", "designer", "viewer", "collector")


def assert_admins_only(app, make, outsider: str, urls: list[tuple[str, str]], nav_link: str):
    """`urls`, (method, url) pairs, refuse `outsider` (one of OUTSIDERS); a logged-in
    outsider's navigation has no link to `nav_link`."""
    client = app.test_client()
    if outsider == "anonymous":
        for method, url in urls:
            response = client.open(url, method=method.upper())
            assert response.status_code == 302 and "/login" in response.location, (method, url)
        return
    user = make.user(outsider)
    login = {"username": user.name, "password": PASSWORD}
    assert client.post("/login", data=login).status_code == 302
    for method, url in urls:
        assert client.open(url, method=method.upper()).status_code == 403, (method, url)
    assert f'href="{nav_link}"' not in client.get("/forms").text


def log_in(client, name: str):
    return client.post("/login", data={"username": name, "password": PASSWORD})
