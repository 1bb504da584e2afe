"""Form lists, downloads and manifests; Digest for password users; app users and QR codes."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib

import pytest
from lxml import etree

from server.auth.models import User
from server.extensions import db
from server.forms import operations as ops
from server.openrosa import digest
from tests.factories import PASSWORD, Factories, app_user_with_forms, simple_form_md

LIST_NS = {"x": "http://openrosa.org/xforms/xformsList"}
MANIFEST_NS = {"m": "http://openrosa.org/xforms/xformsManifest"}

WITH_LOGO = """
| survey   |        |        |         |          |
|          | type   | name   | label   | image    |
|          | note   | intro  | Welcome | logo.png |
| settings |        |        |         |          |
|          | form_id | version |        |          |
|          | welcome | 1      |         |          |
"""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def digest_header(
    challenge: str, method: str, uri: str, user: str, password: str, nc: int = 1
) -> str:
    params = digest.parse_authorization(challenge)
    ha1 = _md5(f"{user}:{params['realm']}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    cnonce, count = "0a4f113b", f"{nc:08x}"
    response = _md5(f"{ha1}:{params['nonce']}:{count}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}", '
        f'uri="{uri}", qop=auth, nc={count}, cnonce="{cnonce}", response="{response}", '
        f'opaque="{params["opaque"]}", algorithm=MD5'
    )


@pytest.fixture
def setup_forms(app):
    with app.app_context():
        make = Factories()
        project = make.project()
        make.form()  # household, no media
        welcome = make.form(WITH_LOGO, media=[ops.Upload("logo.png", b"\x89PNG logo")])
        collector = make.user("collector", name="kim")
        _, token = app_user_with_forms(project, [welcome])
        return {"token": token, "collector": collector.name}


def _entries(response):
    root = etree.fromstring(response.data)
    return [
        {child.tag.split("}")[1]: child.text for child in xform}
        for xform in root.findall("x:xform", LIST_NS)
    ]


def test_collect_digest_flow_and_form_list(client, setup_forms):
    uri = "/v1/projects/1/formList?deviceID=collect%3Aabc"
    first = client.get(uri)
    assert first.status_code == 401
    challenge = first.headers["WWW-Authenticate"]
    assert challenge.startswith("Digest ") and 'qop="auth"' in challenge
    header = digest_header(challenge, "GET", uri, "kim", PASSWORD)
    listed = client.get(uri, headers={"Authorization": header})
    assert listed.status_code == 200
    assert listed.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert listed.headers["X-OpenRosa-Version"] == "1.0"
    entries = {e["formID"]: e for e in _entries(listed)}
    assert set(entries) == {"household", "welcome"}
    assert "manifestUrl" not in entries["household"]
    assert entries["welcome"]["manifestUrl"].endswith("/v1/projects/1/forms/welcome/manifest")
    assert entries["household"]["hash"].startswith("md5:")

    replay = client.get(uri, headers={"Authorization": header})
    assert replay.status_code == 401, "a replayed nonce count must be refused"
    download_uri = entries["household"]["downloadUrl"].split("localhost", 1)[1]
    nc2 = digest_header(challenge, "GET", download_uri, "kim", PASSWORD, nc=2)
    form = client.get(download_uri, headers={"Authorization": nc2})
    assert form.status_code == 200
    assert "md5:" + hashlib.md5(form.data).hexdigest() == entries["household"]["hash"]


def test_wrong_password_then_lockout(client, setup_forms, app):
    uri = "/v1/projects/1/formList"
    app.config["LOGIN_MAX_FAILURES"] = 3
    try:
        for _ in range(3):
            challenge = client.get(uri).headers["WWW-Authenticate"]
            wrong = digest_header(challenge, "GET", uri, "kim", "not the password")
            assert client.get(uri, headers={"Authorization": wrong}).status_code == 401
        challenge = client.get(uri).headers["WWW-Authenticate"]
        right = digest_header(challenge, "GET", uri, "kim", PASSWORD)
        locked = client.get(uri, headers={"Authorization": right})
        assert locked.status_code == 429
    finally:
        app.config["LOGIN_MAX_FAILURES"] = 10


def test_phone_logins_are_audited_once_and_refusals_without_flooding(
    client, setup_forms, app, monkeypatch
):
    """The challenge Collect asks for first and a stale nonce are not failures; a success is
    recorded once a day per address; wrong passwords each, a lock once per lockout."""
    from server.audit.models import AuditEvent

    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 2)
    uri = "/v1/projects/1/formList"

    def get(user: str, password: str, nonce: str | None = None, nc: int = 1):
        challenge = client.get(uri).headers["WWW-Authenticate"]  # no credentials: a challenge
        if nonce:
            challenge = challenge.replace(digest.parse_authorization(challenge)["nonce"], nonce)
        header = digest_header(challenge, "GET", uri, user, password, nc=nc)
        return client.get(uri, headers={"Authorization": header}).status_code

    old_nonce = digest.make_nonce(app.config["SECRET_KEY"], now=1_000_000)
    assert get("kim", PASSWORD, nonce=old_nonce) == 401  # stale: Collect retries, no failure
    assert [get("kim", PASSWORD) for _ in range(3)] == [200, 200, 200]
    assert [get("kim", "not the password") for _ in range(2)] == [401, 401]
    assert [get("kim", PASSWORD) for _ in range(3)] == [429, 429, 429]
    assert get("sokha.chan", "Sokha's password") == 401
    basic = "Basic " + base64.b64encode(b"kim:wrong password").decode()
    secure = client.get("/formList", headers={"Authorization": basic}, base_url="https://x")
    assert secure.status_code == 429  # the lock is per login and address, whatever the scheme

    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
        kim = db.session.scalar(db.select(User).where(User.name == "kim"))
        seen = [
            (e.action, e.user_id, e.details.get("via"), e.details.get("reason")) for e in events
        ]
        assert seen == [
            ("login", kim.id, "digest", None),
            ("login.failed", kim.id, "digest", "refused"),
            ("login.failed", kim.id, "digest", "refused"),
            ("login.failed", kim.id, "digest", "locked"),  # once, not once per request
            ("login.failed", None, "digest", "refused"),
        ]
        assert events[-1].details["known_account"] is False
        text = " ".join(f"{e.object_id} {e.details} {e.address}" for e in events).lower()
        assert "kim" not in text and "sokha" not in text and "password" not in text


def test_a_wrong_basic_password_is_audited(client, setup_forms, app):
    from server.audit.models import AuditEvent

    wrong = "Basic " + base64.b64encode(b"kim:wrong password").decode()
    right = "Basic " + base64.b64encode(f"kim:{PASSWORD}".encode()).decode()
    for header in (wrong, right, right):
        client.get("/formList", headers={"Authorization": header}, base_url="https://localhost")
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
        assert [(e.action, e.details["via"]) for e in events] == [
            ("login.failed", "basic"),
            ("login", "basic"),
        ]


def test_stale_nonce_gets_stale_true(client, setup_forms, app):
    uri = "/v1/projects/1/formList"
    challenge = client.get(uri).headers["WWW-Authenticate"]
    params = digest.parse_authorization(challenge)
    old_nonce = digest.make_nonce(app.config["SECRET_KEY"], now=1_000_000)
    stale = digest_header(
        challenge.replace(params["nonce"], old_nonce), "GET", uri, "kim", PASSWORD
    )
    response = client.get(uri, headers={"Authorization": stale})
    assert response.status_code == 401
    assert "stale=true" in response.headers["WWW-Authenticate"]


def test_basic_is_refused_over_http(client, setup_forms):
    basic = "Basic " + base64.b64encode(f"kim:{PASSWORD}".encode()).decode()
    assert client.get("/formList", headers={"Authorization": basic}).status_code == 401
    secure = client.get("/formList", headers={"Authorization": basic}, base_url="https://localhost")
    assert secure.status_code == 200


def test_viewers_cannot_use_collect(client, app, setup_forms):
    with app.app_context():
        Factories().user("viewer", name="vera")
    uri = "/formList"
    challenge = client.get(uri).headers["WWW-Authenticate"]
    response = client.get(
        uri, headers={"Authorization": digest_header(challenge, "GET", uri, "vera", PASSWORD)}
    )
    assert response.status_code == 403


def test_app_user_sees_only_granted_forms_and_gets_media(client, setup_forms):
    base = f"/v1/key/{setup_forms['token']}/projects/1"
    entries = _entries(client.get(f"{base}/formList"))
    assert [e["formID"] for e in entries] == ["welcome"]
    manifest = etree.fromstring(client.get(f"{base}/forms/welcome/manifest").data)
    (media,) = manifest.findall("m:mediaFile", MANIFEST_NS)
    assert media.findtext("m:filename", namespaces=MANIFEST_NS) == "logo.png"
    url = media.findtext("m:downloadUrl", namespaces=MANIFEST_NS).split("localhost", 1)[1]
    logo = client.get(url)
    assert logo.data == b"\x89PNG logo"
    expected = "md5:" + hashlib.md5(b"\x89PNG logo").hexdigest()
    assert media.findtext("m:hash", namespaces=MANIFEST_NS) == expected
    cached = client.get(url, headers={"If-None-Match": f'"{expected[4:]}"'})
    assert cached.status_code == 304
    assert client.get(f"{base}/forms/household.xml").status_code == 404


def test_form_list_filters_and_states(client, app, setup_forms):
    base = f"/v1/key/{setup_forms['token']}/projects/1"
    assert [e["formID"] for e in _entries(client.get(f"{base}/formList?formID=welcome"))] == [
        "welcome"
    ]
    assert _entries(client.get(f"{base}/formList?formID=other")) == []
    with app.app_context():
        form = db.session.scalar(db.select(ops.Form).where(ops.Form.xml_form_id == "welcome"))
        form.state = "closing"
        db.session.commit()
    assert _entries(client.get(f"{base}/formList")) == []
    assert client.get(f"{base}/forms/welcome.xml").status_code == 200  # still downloadable


def test_list_all_versions(client, app, setup_forms):
    with app.app_context():
        project = Factories().project()
        newer = simple_form_md(version="2", extra="|          | integer | q_n | N | N |")
        Factories().form(newer, project=project)
    uri = "/formList?listAllVersions=true"
    challenge = client.get(uri).headers["WWW-Authenticate"]
    listed = client.get(
        uri, headers={"Authorization": digest_header(challenge, "GET", uri, "kim", PASSWORD)}
    )
    versions = [(e["formID"], e["version"]) for e in _entries(listed)]
    assert ("household", "1") in versions and ("household", "2") in versions


def test_app_user_api_and_qr_code(client, app):
    with app.app_context():
        make = Factories()
        make.project()
        make.form()
        admin_name = make.user("admin").name
    token = client.post("/v1/sessions", json={"email": admin_name, "password": PASSWORD}).json[
        "token"
    ]
    auth = {"Authorization": f"Bearer {token}"}
    created = client.post(
        "/v1/projects/1/app-users", json={"displayName": "Team A phone"}, headers=auth
    )
    assert created.status_code == 200 and created.json["type"] == "field_key"
    app_user_id, url_token = created.json["id"], created.json["token"]
    assert client.post(
        f"/v1/projects/1/forms/household/assignments/app-user/{app_user_id}", headers=auth
    ).json == {"success": True}
    assert len(_entries(client.get(f"/v1/key/{url_token}/projects/1/formList"))) == 1

    png = client.get(f"/v1/projects/1/app-users/{app_user_id}/qr.png", headers=auth)
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")
    svg = client.get(f"/v1/projects/1/app-users/{app_user_id}/qr.svg", headers=auth)
    assert b"<svg" in svg.data

    from server.appusers.models import AppUser
    from server.appusers.operations import collect_settings, qr_payload
    from server.projects.models import Project

    with app.test_request_context():
        settings = collect_settings(
            db.session.get(AppUser, app_user_id), db.session.get(Project, 1), "http://localhost/"
        )
        decoded = json.loads(zlib.decompress(base64.b64decode(qr_payload(settings))))
    assert decoded["general"]["server_url"] == f"http://localhost/v1/key/{url_token}/projects/1"
    assert decoded["project"]["name"] == "Default project" and decoded["admin"] == {}

    assert client.delete(f"/v1/projects/1/app-users/{app_user_id}", headers=auth).status_code == 200
    assert client.get(f"/v1/key/{url_token}/projects/1/formList").status_code == 403


def test_app_user_pages_create_grant_show_qr_and_revoke(client, app):
    with app.app_context():
        make = Factories()
        make.project()
        make.form()
        designer = make.user("designer").name
    client.post("/login", data={"username": designer, "password": PASSWORD})
    created = client.post("/projects/1/app-users", data={"display_name": "Team B"})
    assert created.status_code == 302
    detail_url = created.headers["Location"]
    page = client.get(detail_url).text
    assert "Team B" in page and "qr.png" in page
    from server.appusers.models import AppUser
    from server.forms.models import Form

    with app.app_context():
        form_id = db.session.scalar(db.select(Form.id))
        app_user_id = db.session.scalar(db.select(AppUser.id))
    client.post(detail_url, data={"form_id": str(form_id)})
    qr = client.get(f"/v1/projects/1/app-users/{app_user_id}/qr.png")
    assert qr.status_code == 200 and qr.headers["Cache-Control"] == "no-store"
    revoked = client.post(f"/projects/1/app-users/{app_user_id}/revoke", follow_redirects=True)
    assert "was revoked" in revoked.text
    assert "Team B</a>" not in revoked.text


def test_a_collector_sees_and_submits_only_forms_of_their_projects(client, app, setup_forms):
    with app.app_context():
        make = Factories()
        other = make.project("Other mission")
        make.form(simple_form_md(form_id="secret_form"), project=other)
        other_id = other.id
    root = "/formList"
    challenge = client.get(root).headers["WWW-Authenticate"]
    listed = client.get(
        root, headers={"Authorization": digest_header(challenge, "GET", root, "kim", PASSWORD)}
    )
    assert "secret_form" not in {e["formID"] for e in _entries(listed)}
    uri = f"/v1/projects/{other_id}/formList"
    challenge = client.get(uri).headers["WWW-Authenticate"]
    refused = client.get(
        uri, headers={"Authorization": digest_header(challenge, "GET", uri, "kim", PASSWORD)}
    )
    assert refused.status_code == 403
    xml = b'<data id="secret_form" version="1"><meta><instanceID>uuid:s1</instanceID></meta></data>'
    post_uri = "/submission"
    challenge = client.head(post_uri).headers["WWW-Authenticate"]
    from tests.factories import multipart

    posted = client.post(
        post_uri,
        data=multipart(xml),
        content_type="multipart/form-data",
        headers={"Authorization": digest_header(challenge, "POST", post_uri, "kim", PASSWORD)},
    )
    assert posted.status_code == 404


def test_basic_is_accepted_behind_a_proxy_that_says_https(app, setup_forms):
    from server import create_app

    behind_proxy = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            "TRUST_PROXY": True,
        },
    )
    client = behind_proxy.test_client()
    basic = "Basic " + base64.b64encode(f"kim:{PASSWORD}".encode()).decode()
    plain = client.get("/formList", headers={"Authorization": basic})
    assert plain.status_code == 401
    proxied = client.get(
        "/formList", headers={"Authorization": basic, "X-Forwarded-Proto": "https"}
    )
    assert proxied.status_code == 200
    assert app.config["TRUST_PROXY"] is False  # the default app ignores the header
    spoofed = app.test_client().get(
        "/formList", headers={"Authorization": basic, "X-Forwarded-Proto": "https"}
    )
    assert spoofed.status_code == 401
    with behind_proxy.app_context():
        db.engine.dispose()
