"""Media named by a form, and the open / closing / closed states."""

from __future__ import annotations

import io

from server.forms import operations as ops
from tests.factories import PASSWORD, xlsx_from_md

WITH_MEDIA = """
| survey   |                         |        |          |          |             |
|          | type                    | name   | label    | image    | calculation |
|          | note                    | intro  | Welcome  | logo.png |             |
|          | select_one_from_file districts.csv | district | District |  |       |
|          | calculate               | pop    |          |          | pulldata('census', 'pop', 'district', ${district}) |
| settings |                         |        |          |          |             |
|          | form_id                 | version |         |          |             |
|          | with_media              | 1      |          |          |             |
"""


def _auth(client, user):
    token = client.post("/v1/sessions", json={"email": user.name, "password": PASSWORD}).json[
        "token"
    ]
    return {"Authorization": f"Bearer {token}"}


def test_media_named_by_the_form_are_expected_and_stored(client, make):
    designer = make.user("designer")
    auth = _auth(client, designer)
    logo = b"\x89PNG\r\n\x1a\nfake"
    response = client.post(
        "/v1/projects/1/forms?publish=true",
        data={
            "file": (io.BytesIO(xlsx_from_md(WITH_MEDIA)), "with_media.xlsx"),
            "media": [(io.BytesIO(logo), "logo.png")],
        },
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.json
    attachments = client.get("/v1/projects/1/forms/with_media/attachments", headers=auth).json
    by_name = {a["name"]: a for a in attachments}
    assert by_name["logo.png"]["type"] == "image" and by_name["logo.png"]["exists"] is True
    assert by_name["districts.csv"]["type"] == "file"
    assert by_name["districts.csv"]["exists"] is False
    assert by_name["census.csv"]["type"] == "file"  # pulldata's CSV
    served = client.get("/v1/projects/1/forms/with_media/attachments/logo.png", headers=auth)
    assert served.data == logo

    client.post("/login", data={"username": designer.name, "password": PASSWORD})
    page = client.get("/projects/1/forms/with_media").text
    assert "districts.csv" in page and "missing" in page
    listing = client.get("/forms").text
    assert "2 missing" in listing


def test_unexpected_media_name_is_refused(make):
    form = make.form(WITH_MEDIA)
    try:
        ops.attach_media(form.current_def, ops.Upload("other.png", b"x"))
    except ops.AttachmentNotExpected as error:
        assert "logo.png" in str(error)
    else:
        raise AssertionError("a media file the form does not name was accepted")


def test_new_version_keeps_media_with_the_same_name(make):
    from server.extensions import db

    form = make.form(WITH_MEDIA, media=[ops.Upload("logo.png", b"png")])
    newer = WITH_MEDIA.replace("| with_media              | 1 ", "| with_media              | 2 ")
    prepared = ops.prepare_form(ops.Upload("with_media.xlsx", xlsx_from_md(newer)))
    result = ops.publish_form(form.project_id and make.project(), prepared)
    db.session.commit()
    logo = next(a for a in result.form_def.attachments if a.name == "logo.png")
    assert logo.blob is not None and logo.blob.content == b"png"


def test_form_states(client, make):
    form = make.form()
    designer = make.user("designer")
    auth = _auth(client, designer)
    url = f"/v1/projects/1/forms/{form.xml_form_id}"
    for state in ("closing", "closed", "open"):
        response = client.patch(url, json={"state": state}, headers=auth)
        assert response.status_code == 200 and response.json["state"] == state
    bad = client.patch(url, json={"state": "archived"}, headers=auth)
    assert bad.status_code == 400
    assert "open, closing, closed" in bad.json["message"]
