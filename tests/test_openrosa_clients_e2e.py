"""ODK Collect and Enketo, as they behave on the wire, against a real CaseBridge server."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import selectinload

from server.extensions import db
from server.forms import operations as ops
from server.submissions.models import Submission
from tests.factories import PASSWORD, Factories, app_user_with_forms
from tests.openrosa_clients import CollectClient, EnketoClient

PHOTO_FORM = """
| survey   |        |        |          |          |
|          | type   | name   | label    | image    |
|          | text   | name   | Name     | logo.png |
|          | image  | photo  | Photo    |          |
|          | image  | sign   | Signature |         |
| settings |        |        |          |          |
|          | form_id | version |         |          |
|          | photos | 1      |          |          |
"""


def _xml(instance: str) -> bytes:
    return (
        f'<data id="photos" version="1"><name>A</name><photo>p.jpg</photo><sign>s.png</sign>'
        f"<meta><instanceID>{instance}</instanceID></meta></data>"
    ).encode()


@pytest.fixture
def server(app, live_server):
    with app.app_context():
        make = Factories()
        project = make.project()
        make.form(PHOTO_FORM, media=[ops.Upload("logo.png", b"\x89PNG-logo")])
        make.user("collector", name="field1")
        _, token = app_user_with_forms(project)
    return {"url": live_server, "token": token}


def _stored(app, instance_id: str) -> Submission:
    with app.app_context():
        query = db.select(Submission).options(selectinload(Submission.attachments))
        return db.session.scalar(query.where(Submission.instance_id == instance_id))


def test_collect_with_a_password_full_cycle_and_split_upload(app, server):
    collect = CollectClient(f"{server['url']}/v1/projects/1", "field1", PASSWORD)
    _, forms = collect.form_list()
    (entry,) = forms
    assert entry["formID"] == "photos" and entry["manifestUrl"]
    collect.download_form(entry)  # raises if the md5 in the list is not of the bytes served
    (media,) = collect.manifest(entry)
    assert collect.download_media(media) == b"\x89PNG-logo"
    assert collect.download_media(media) is None  # unchanged md5: Collect does not refetch

    app.config["OPENROSA_MAX_SUBMISSION_BYTES"] = 3000  # force Collect to split the upload
    try:
        responses = collect.submit(_xml("uuid:c1"), {"p.jpg": b"j" * 2000, "s.png": b"s" * 2000})
    finally:
        app.config["OPENROSA_MAX_SUBMISSION_BYTES"] = 100_000_000
    assert len(responses) >= 2 and all(r.status_code == 201 for r in responses)
    assert collect.last_ok and "received" in collect.last_message
    stored = _stored(app, "uuid:c1")
    assert stored.complete and {a.name for a in stored.attachments} == {"p.jpg", "s.png"}

    log = collect.requests_log
    assert all("deviceID=collect%3Aabc123" in url for _, url, _, _ in log)
    assert "Authorization" not in log[0][2] and log[0][3] == 401
    methods = [m for m, url, _, _ in log if url.split("?")[0].endswith("/submission")]
    assert methods[0] == "HEAD" and "POST" in methods


def test_collect_with_an_app_user_qr_url(app, server):
    collect = CollectClient(f"{server['url']}/v1/key/{server['token']}/projects/1")
    _, forms = collect.form_list()
    collect.download_form(forms[0])
    collect.submit(_xml("uuid:c2"), {"p.jpg": b"j", "s.png": b"s"})
    assert collect.last_ok
    assert all(status != 401 for *_, status in collect.requests_log)
    assert _stored(app, "uuid:c2").submitter_app_user_id is not None


def test_collect_at_the_server_root(app, server):
    collect = CollectClient(server["url"], "field1", PASSWORD)
    _, forms = collect.form_list()
    assert [f["formID"] for f in forms] == ["photos"]
    collect.submit(_xml("uuid:c3"))
    assert collect.last_ok
    assert _stored(app, "uuid:c3").missing_attachments == ["p.jpg", "s.png"]


def test_collect_wrong_password_is_refused(server):
    collect = CollectClient(f"{server['url']}/v1/projects/1", "field1", "wrong password!")
    with pytest.raises(Exception, match="AuthRequired|401"):
        collect.form_list()


def test_enketo_checks_downloads_and_submits(app, server):
    enketo = EnketoClient(f"{server['url']}/v1/projects/1", "field1", PASSWORD)
    assert enketo.check_form("photos").status_code == 200
    _, info = enketo.form_info("photos")
    assert b"<h:html" in enketo.download_form(info)
    assert [m["filename"] for m in enketo.manifest(info)] == ["logo.png"]
    responses = enketo.submit(_xml("uuid:e1"), {"p.jpg": b"j", "s.png": b"s"})
    assert all(r.status_code == 201 for r in responses)
    assert _stored(app, "uuid:e1").complete
