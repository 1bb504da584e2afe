"""Every accepted format: .xlsx, .xls, .csv XLSForms and XForm XML, by API and upload page."""

from __future__ import annotations

import io

import pytest
import xlwt

from tests.factories import PASSWORD, md_table, simple_form_md, xlsx_from_md


def xls_from_md(markdown: str) -> bytes:
    workbook = xlwt.Workbook(encoding="utf-8")
    for name, rows in md_table(markdown).items():
        sheet = workbook.add_sheet(name)
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                if cell:
                    sheet.write(r, c, cell)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_from_md(markdown: str) -> bytes:
    """pyxform's CSV layout: the sheet name in the first column, then that sheet's rows."""
    lines = []
    for name, rows in md_table(markdown).items():
        lines.append(name)
        lines.extend("," + ",".join(f'"{c}"' if "," in c else c for c in row) for row in rows)
    return ("\n".join(lines) + "\n").encode()


def xform_xml() -> bytes:
    from pyxform.xls2xform import convert

    return convert(io.BytesIO(xlsx_from_md(simple_form_md())), file_type=".xlsx").xform.encode()


FORMATS = {
    "xlsx": ("household.xlsx", lambda: xlsx_from_md(simple_form_md())),
    "xls": ("household.xls", lambda: xls_from_md(simple_form_md())),
    "csv": ("household.csv", lambda: csv_from_md(simple_form_md())),
    "xml": ("household.xml", xform_xml),
}


@pytest.fixture
def auth(client, make):
    designer = make.user("designer")
    token = client.post("/v1/sessions", json={"email": designer.name, "password": PASSWORD}).json[
        "token"
    ]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("kind", FORMATS)
def test_each_format_publishes_through_the_api(client, auth, kind):
    filename, build = FORMATS[kind]
    body = build()
    response = client.post(
        "/v1/projects/1/forms?publish=true",
        data={"file": (io.BytesIO(body), filename)},
        headers=auth,
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.json
    assert response.json["xmlFormId"] == "household"
    assert response.json["version"] == "1"
    assert response.json["name"] == "Household"
    served = client.get("/v1/projects/1/forms/household.xml", headers=auth)
    assert b"What is it?" in served.data


@pytest.mark.parametrize("kind", FORMATS)
def test_each_format_publishes_through_the_upload_page(client, make, kind):
    designer = make.user("designer")
    client.post("/login", data={"username": designer.name, "password": PASSWORD})
    filename, build = FORMATS[kind]
    response = client.post(
        "/projects/1/forms/upload",
        data={"file": (io.BytesIO(build()), filename)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Version 1 published." in response.text
    assert "Household" in response.text


def test_raw_xml_body_as_central_takes_it(client, auth):
    response = client.post(
        "/v1/projects/1/forms?publish=true",
        data=xform_xml(),
        headers={**auth, "Content-Type": "application/xml"},
    )
    assert response.status_code == 200, response.json
    assert response.json["publishedAt"] is not None
