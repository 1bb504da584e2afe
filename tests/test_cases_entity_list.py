"""The case list reaches phones as an ODK entity list: manifest, CSV, integrity URL."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest
from lxml import etree
from sqlalchemy import select

from server.extensions import db
from server.projects.models import Project
from tests.cases_support import FOLLOW_UP_MD, SCREENING_MD, follow_up_xml, post, screening_xml
from tests.factories import app_user_with_forms

MANIFEST = "{http://openrosa.org/xforms/xformsManifest}"


@pytest.fixture
def phone(app, make):
    project = make.project()
    make.form(SCREENING_MD, project=project)
    follow_up = make.form(FOLLOW_UP_MD, project=project)
    _, token = app_user_with_forms(project)
    assert follow_up.current_def.missing_attachments == [], "an entity list is never missing"
    return project.id, token


def drain(runner):
    assert runner.invoke(args=["worker", "--burst"]).exit_code == 0


def manifest(client, project_id, token):
    response = client.get(f"/v1/key/{token}/projects/{project_id}/forms/mini_follow_up/manifest")
    assert response.status_code == 200
    assert response.headers["X-OpenRosa-Version"] == "1.0"
    [media] = etree.fromstring(response.data).findall(f"{MANIFEST}mediaFile")
    return media


def rows(client, url):
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return response, list(csv.DictReader(io.StringIO(response.data.decode())))


def test_the_manifest_marks_the_case_list_as_an_entity_list(phone, client, runner):
    project_id, token = phone
    xml, _, case_uuid = screening_xml()
    post(client, project_id, token, xml)
    drain(runner)

    media = manifest(client, project_id, token)
    assert media.get("type") == "entityList"
    assert media.findtext(f"{MANIFEST}filename") == "cases.csv"
    prefix = f"http://localhost/v1/key/{token}/projects/{project_id}"
    assert media.findtext(f"{MANIFEST}integrityUrl") == f"{prefix}/datasets/cases/integrity"
    download = media.findtext(f"{MANIFEST}downloadUrl")
    assert download == f"{prefix}/forms/mini_follow_up/attachments/cases.csv"

    response, listed = rows(client, download)
    assert listed == [{"name": case_uuid, "label": f"CB-{case_uuid[:8]}", "__version": "1"}]
    assert list(listed[0]) == ["name", "label", "__version"], "no personal data in the list"
    hash_ = media.findtext(f"{MANIFEST}hash")
    assert hash_ == f"md5:{hashlib.md5(response.data).hexdigest()}"
    again = client.get(download, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_an_update_bumps_the_version_phones_see_and_the_hash(phone, client, runner):
    project_id, token = phone
    xml, _, case_uuid = screening_xml()
    post(client, project_id, token, xml)
    drain(runner)
    before = manifest(client, project_id, token).findtext(f"{MANIFEST}hash")
    update, _ = follow_up_xml(case_uuid, base_version=1)
    post(client, project_id, token, update)
    drain(runner)
    media = manifest(client, project_id, token)
    assert media.findtext(f"{MANIFEST}hash") != before
    _, listed = rows(client, media.findtext(f"{MANIFEST}downloadUrl"))
    assert listed[0]["__version"] == "2"


def test_only_this_projects_cases_are_listed(phone, make, client, runner, app_context):
    project_id, token = phone
    other = make.project("Other mission project")
    make.form(SCREENING_MD, project=other)
    _, other_token = app_user_with_forms(other)
    xml, _, elsewhere = screening_xml()
    post(client, other.id, other_token, xml)
    drain(runner)
    media = manifest(client, project_id, token)
    _, listed = rows(client, media.findtext(f"{MANIFEST}downloadUrl"))
    assert listed == []
    db.session.remove()


def test_the_integrity_url_says_which_cases_are_gone(phone, client, runner):
    project_id, token = phone
    xml, _, case_uuid = screening_xml()
    post(client, project_id, token, xml)
    drain(runner)
    gone = "0f5c2c8e-1111-4111-8111-111111111111"
    response = client.get(
        f"/v1/key/{token}/projects/{project_id}/datasets/cases/integrity?id={case_uuid},{gone}"
    )
    assert response.status_code == 200 and response.headers["X-OpenRosa-Version"] == "1.0"
    root = etree.fromstring(response.data)
    states = {e.get("id"): e.findtext("deleted") for e in root.find("entities")}
    assert root.tag == "data" and states == {case_uuid: "false", gone: "true"}


def test_the_integrity_url_needs_a_valid_token_and_a_known_list(phone, client):
    project_id, token = phone
    bad = client.get(f"/v1/key/not-a-token/projects/{project_id}/datasets/cases/integrity?id=x")
    assert bad.status_code == 403
    unknown = client.get(f"/v1/key/{token}/projects/{project_id}/datasets/people/integrity")
    assert unknown.status_code == 404
    no_auth = client.get(f"/v1/projects/{project_id}/datasets/cases/integrity?id=x")
    assert no_auth.status_code == 401


def test_only_a_phone_given_a_form_with_the_list_may_ask_its_integrity(phone, make, client):
    from server.forms.models import Form

    project_id, _ = phone
    screening_only = db.session.scalar(select(Form).where(Form.xml_form_id == "mini_screening"))
    project = db.session.get(Project, project_id)
    _, token = app_user_with_forms(project, [screening_only])
    response = client.get(f"/v1/key/{token}/projects/{project_id}/datasets/cases/integrity?id=x")
    assert response.status_code == 404
