"""Drafts and versions as in ODK Central; phones cache by version, so versions are never reused."""

from __future__ import annotations

import pytest

from server.extensions import db
from server.forms import operations as ops
from server.forms.models import FormDef
from tests.factories import counts, simple_form_md, xlsx_from_md


def _prepared(version: str, extra: str = "") -> ops.PreparedForm:
    markdown = simple_form_md(version=version, extra=extra)
    return ops.prepare_form(ops.Upload("household.xlsx", xlsx_from_md(markdown)))


EXTRA_QUESTION = "|          | integer | q_count | How many? | Combien ? |"


def test_draft_then_publish(make):
    project = make.project()
    result = ops.publish_form(project, _prepared("1"), draft=True)
    db.session.commit()
    form = result.form
    assert form.current_def is None and form.draft_def is not None
    ops.publish_draft(form)
    db.session.commit()
    assert form.current_def.version == "1" and form.draft_def is None


def test_new_version_keeps_older_versions(make):
    project = make.project()
    first = ops.publish_form(project, _prepared("1")).form_def
    db.session.commit()
    second = ops.publish_form(project, _prepared("2", EXTRA_QUESTION)).form_def
    db.session.commit()
    form = second.form
    assert form.current_def is second
    assert [d.version for d in form.published_defs] == ["2", "1"]
    assert db.session.get(FormDef, first.id).xml == first.xml
    assert first.xml_md5 != second.xml_md5


def test_same_version_same_content_changes_nothing(make):
    project = make.project()
    ops.publish_form(project, _prepared("1"))
    db.session.commit()
    before = counts()
    again = ops.publish_form(project, _prepared("1"))
    db.session.commit()
    assert again.changed is False
    assert counts() == before


def test_same_version_different_content_is_refused(make):
    project = make.project()
    ops.publish_form(project, _prepared("1"))
    db.session.commit()
    before = counts()
    with pytest.raises(ops.FormConflict, match="already published with different content"):
        ops.publish_form(project, _prepared("1", EXTRA_QUESTION))
    db.session.rollback()
    assert counts() == before


def test_md5_is_of_the_exact_bytes_served(client, make):
    import hashlib

    form = make.form()
    designer = make.user("designer")
    token = _token(client, designer)
    response = client.get(
        f"/v1/projects/{form.project_id}/forms/{form.xml_form_id}.xml",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    digest = hashlib.md5(response.data).hexdigest()
    meta = client.get(
        f"/v1/projects/{form.project_id}/forms/{form.xml_form_id}",
        headers={"Authorization": f"Bearer {token}"},
    ).json
    assert meta["hash"] == digest
    assert response.headers["ETag"].strip('"') == digest
    cached = client.get(
        f"/v1/projects/{form.project_id}/forms/{form.xml_form_id}.xml",
        headers={"Authorization": f"Bearer {token}", "If-None-Match": f'"{digest}"'},
    )
    assert cached.status_code == 304


def _token(client, user) -> str:
    response = client.post(
        "/v1/sessions", json={"email": user.name, "password": "correct horse battery"}
    )
    return response.json["token"]


def _xlsx_headers(token: str, fallback: str = "household") -> dict:
    return {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "X-XlsForm-FormId-Fallback": fallback,
    }


def test_api_draft_workflow_as_central(client, make):
    designer = make.user("designer")
    token = _token(client, designer)
    auth = {"Authorization": f"Bearer {token}"}
    body = xlsx_from_md(simple_form_md(version="1"))
    created = client.post("/v1/projects/1/forms", data=body, headers=_xlsx_headers(token))
    assert created.status_code == 200, created.json
    assert created.json["xmlFormId"] == "household"
    assert created.json["publishedAt"] is None
    assert client.get("/v1/projects/1/forms/household/draft", headers=auth).status_code == 200
    published = client.post("/v1/projects/1/forms/household/draft/publish", headers=auth)
    assert published.json == {"success": True}
    again = client.post("/v1/projects/1/forms", data=body, headers=_xlsx_headers(token))
    assert again.status_code == 409

    new = xlsx_from_md(simple_form_md(version="2", extra=EXTRA_QUESTION))
    assert (
        client.post(
            "/v1/projects/1/forms/household/draft", data=new, headers=_xlsx_headers(token)
        ).status_code
        == 200
    )
    client.post("/v1/projects/1/forms/household/draft/publish", headers=auth)
    versions = client.get("/v1/projects/1/forms/household/versions", headers=auth).json
    assert [v["version"] for v in versions] == ["2", "1"]
    old = client.get("/v1/projects/1/forms/household/versions/1.xml", headers=auth)
    assert b'version="1"' in old.data


def test_api_refuses_republishing_a_used_version(client, make):
    designer = make.user("designer")
    token = _token(client, designer)
    auth = {"Authorization": f"Bearer {token}"}
    client.post(
        "/v1/projects/1/forms?publish=true",
        data=xlsx_from_md(simple_form_md(version="1")),
        headers=_xlsx_headers(token),
    )
    changed = xlsx_from_md(simple_form_md(version="1", extra=EXTRA_QUESTION))
    client.post("/v1/projects/1/forms/household/draft", data=changed, headers=_xlsx_headers(token))
    refused = client.post("/v1/projects/1/forms/household/draft/publish", headers=auth)
    assert refused.status_code == 409
    assert "version" in refused.json["message"]
    renamed = client.post("/v1/projects/1/forms/household/draft/publish?version=1b", headers=auth)
    assert renamed.status_code == 200
    current = client.get("/v1/projects/1/forms/household", headers=auth).json
    assert current["version"] == "1b"


def test_preview_lists_questions_with_labels_per_language(client, make):
    form = make.form(draft=True)
    designer = make.user("designer")
    client.post("/login", data={"username": designer.name, "password": "correct horse battery"})
    url = f"/projects/{form.project_id}/forms/{form.xml_form_id}"
    english = client.get(url, query_string={"show": "draft", "lang": "English (en)"}).text
    french = client.get(url, query_string={"show": "draft", "lang": "French (fr)"}).text
    assert "What is it?" in english and "Qu&#39;est-ce ?" not in english
    assert "Qu&#39;est-ce ?" in french and "Oui" in french
    assert "Publish the draft" in english
