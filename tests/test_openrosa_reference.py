"""ODK Central's own forms and submissions: each publishes, each submission posts with 201
and reads back byte for byte."""

from __future__ import annotations

import re

import pytest

from server.extensions import db
from server.forms import operations as ops
from server.projects.operations import create_project
from tests.conftest import SHARED
from tests.factories import PASSWORD, Factories, app_user_with_forms, multipart

CENTRAL = SHARED / "odk" / "central"
FORMS = sorted((CENTRAL / "forms").glob("*.xml"))


def _submissions_for(form_path):
    return sorted((CENTRAL / "submissions").glob(f"{form_path.stem}.*.xml"))


def _publish(form_path) -> tuple[int, str, str]:
    """The form in a project of its own; returns (project id, xmlFormId, app-user token)."""
    project = create_project(form_path.stem)
    upload = ops.Upload(form_path.name, form_path.read_bytes())
    # selectMultiple.xml has a <select> with no items, which ODK Validate refuses.
    prepared = ops.prepare_form(upload, force=form_path.stem == "selectMultiple")
    form = ops.publish_form(project, prepared).form
    db.session.commit()
    _, token = app_user_with_forms(project)
    return project.id, form.xml_form_id, token


def _instance_id(xml: bytes) -> str:
    return re.search(rb"<(?:\w+:)?instanceID>([^<]+)</", xml).group(1).decode()


@pytest.mark.parametrize("form_path", FORMS, ids=lambda p: p.stem)
def test_central_form_publishes_and_its_submissions_round_trip(
    app, client, shared_reference, form_path
):
    with app.app_context():
        target = _publish(form_path)
        admin_name = Factories().user("admin", projects=[]).name
    bearer = {
        "Authorization": "Bearer "
        + client.post("/v1/sessions", json={"email": admin_name, "password": PASSWORD}).json[
            "token"
        ]
    }
    used: set[str] = set()
    for submission_path in _submissions_for(form_path):
        xml = submission_path.read_bytes()
        instance_id = _instance_id(xml)
        if instance_id in used:  # Central's fixtures reuse ids across separate test cases
            with app.app_context():
                target = _publish(form_path)
        used.add(instance_id)
        project_id, xml_form_id, token = target
        response = client.post(
            f"/v1/key/{token}/projects/{project_id}/submission?deviceID=collect:ref",
            data=multipart(xml),
            content_type="multipart/form-data",
        )
        assert response.status_code == 201, (submission_path.name, response.data)
        back = client.get(
            f"/v1/projects/{project_id}/forms/{xml_form_id}/submissions/{instance_id}.xml",
            headers=bearer,
        )
        assert back.data == xml, submission_path.name


def test_every_central_submission_has_its_form(shared_reference):
    stems = {p.stem for p in FORMS}
    for submission in (CENTRAL / "submissions").glob("*.xml"):
        assert submission.name.split(".")[0] in stems
