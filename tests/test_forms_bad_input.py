"""Hostile or broken uploads: refused with 400 and a clear message, nothing stored."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.factories import PASSWORD, counts, simple_form_md, xlsx_from_md

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
<h:head><h:title>&xxe;</h:title><model><instance><data id="xxe"/></instance></model></h:head>
<h:body/></h:html>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
<h:head><h:title>&lol4;</h:title><model><instance><data id="lolz"/></instance></model></h:head>
<h:body/></h:html>"""


def _xform(form_id: str) -> bytes:
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml">
<h:head><h:title>T</h:title><model><instance><data id="{form_id}"><a/></data></instance>
<bind nodeset="/data/a" type="string"/></model></h:head>
<h:body><input ref="/data/a"><label>A</label></input></h:body></h:html>""".encode()


def _zip_bomb() -> bytes:
    """A valid-looking .xlsx whose one part inflates to 200 MB (a few hundred KB zipped)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            chunk = b"\0" * (1024 * 1024)
            for _ in range(200):
                part.write(chunk)
    return buffer.getvalue()


def _corrupt_xlsx() -> bytes:
    data = bytearray(xlsx_from_md(simple_form_md()))
    data[len(data) // 2 : len(data) // 2 + 400] = b"\xff" * 400
    return bytes(data)


CASES = {
    "not-a-spreadsheet": ("photo.xlsx", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "not a valid .xlsx"),
    "wrong-extension": ("notes.pdf", b"%PDF-1.4 ...", "not an XLSForm or XForm"),
    "corrupt-xlsx": ("damaged.xlsx", _corrupt_xlsx(), "could not"),
    "zip-bomb": ("bomb.xlsx", _zip_bomb(), "MB allowed"),
    "xxe": ("xxe.xml", XXE, "DTD or entities"),
    "billion-laughs": ("lol.xml", BILLION_LAUGHS, "DTD or entities"),
    "form-id-path": ("path.xml", _xform("../../etc/passwd"), "form id"),
    "form-id-slash": ("slash.xml", _xform("a/b"), "form id"),
    "malformed-xml": ("bad.xml", b"<h:html><unclosed>", "not well-formed"),
    "empty": ("empty.xlsx", b"", "empty"),
}


@pytest.fixture
def designer_token(client, make):
    designer = make.user("designer")
    return client.post("/v1/sessions", json={"email": designer.name, "password": PASSWORD}).json[
        "token"
    ]


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_upload_is_refused_and_nothing_stored(client, app, designer_token, case):
    filename, body, words = CASES[case]
    with app.app_context():
        before = counts()
    response = client.post(
        "/v1/projects/1/forms",
        data={"file": (io.BytesIO(body), filename)},
        headers={"Authorization": f"Bearer {designer_token}"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400, response.json
    assert words.lower() in response.json["message"].lower()
    assert response.json["problems"]
    with app.app_context():
        assert counts() == before


def test_failed_upload_leaves_the_published_version_alone(client, app, make, designer_token):
    with app.app_context():
        form = make.form()
        published_md5 = form.current_def.xml_md5
    broken = simple_form_md(version="2", extra="|          | textt | oops | Oops | Oups |")
    response = client.post(
        "/v1/projects/1/forms/household/draft",
        data=xlsx_from_md(broken),
        headers={
            "Authorization": f"Bearer {designer_token}",
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        },
    )
    assert response.status_code == 400
    meta = client.get(
        "/v1/projects/1/forms/household", headers={"Authorization": f"Bearer {designer_token}"}
    ).json
    assert meta["hash"] == published_md5
    assert meta["version"] == "1"


def test_wrong_content_type_is_refused(client, designer_token):
    response = client.post(
        "/v1/projects/1/forms",
        data=b"hello",
        headers={"Authorization": f"Bearer {designer_token}", "Content-Type": "image/png"},
    )
    assert response.status_code == 400
    assert "content type" in response.json["message"].lower()


def test_xlsform_form_id_with_path_characters_is_refused(client, app, designer_token):
    markdown = """
    | survey   |         |      |       |
    |          | type    | name | label |
    |          | text    | a    | A     |
    | settings |         |      |       |
    |          | form_id | version |    |
    |          | ../evil | 1    |       |
    """
    with app.app_context():
        before = counts()
    response = client.post(
        "/v1/projects/1/forms",
        data={"file": (io.BytesIO(xlsx_from_md(markdown)), "evil.xlsx")},
        headers={"Authorization": f"Bearer {designer_token}"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "form id" in response.json["message"].lower() or "form_id" in response.json["message"]
    with app.app_context():
        assert counts() == before


def test_only_bare_ampersands_are_repaired_other_malformed_xml_is_refused(app_context):
    from server.forms import operations as ops
    from server.forms.problems import FormRejected

    good = _xform("amp").replace(
        b"<h:title>T</h:title>", b"<h:title>Fish & Chips &amp; Co</h:title>"
    )
    prepared = ops.prepare_form(ops.Upload("amp.xml", good))
    assert "<h:title>Fish &amp; Chips &amp; Co</h:title>" in prepared.xml
    assert "bare '&'" in prepared.warnings[0].message
    for broken in (
        good.replace(b"</h:title>", b""),  # unclosed tag beside the ampersand
        _xform("nbsp").replace(b"<h:title>T", b"<h:title>&nbsp;T"),  # undefined entity
    ):
        with pytest.raises(FormRejected, match="not well-formed|entities"):
            ops.prepare_form(ops.Upload("broken.xml", broken))
