"""Who may reach what: every route of the app, for every kind of visitor, in one table.

Rows come from `app.url_map`: a new route without a row here fails the test, so nobody adds
a door without saying who may open it. Each row gives the status expected for an anonymous
visitor and for a logged-in collector, viewer, designer and admin (all members of the one
project). Requests carry no body and ids that exist, so a 2xx/3xx/4xx after the role checks
is the view's own answer (a 400 for an empty upload still means "allowed in").

Mission: case routes are probed with a case this mission owns ("own") and with a case of
another mission nobody shared ("other"); the second must be 404 for everyone who gets past
the role check, admins included, and no list may name it. Submission routes likewise, with a
submission of each case (its XML is the person's record as much as the case is).
"""

from __future__ import annotations

import uuid as uuid_module
from dataclasses import dataclass

import pytest
from flask import url_for
from sqlalchemy import select

from server.appusers.operations import create_app_user, grant_form
from server.cases.models import Case, Person
from server.extensions import db
from server.storage import storage
from server.submissions.models import Submission, SubmissionAttachment
from tests.factories import PASSWORD, multipart

ACTORS = ("anonymous", "collector", "viewer", "designer", "admin")
#: (method, endpoint[, case variant]) -> expected status per actor, in ACTORS order:
#: (anonymous, collector, viewer, designer, admin). 302 for a page = to the login page.
MATRIX: dict[tuple[str, ...], tuple[int, int, int, int, int]] = {
    # -- open to all: logging in, health, static files --------------------------------------
    ("GET", "pages.index"): (302, 302, 302, 302, 302),
    ("GET", "pages.login"): (200, 200, 200, 200, 200),
    ("POST", "pages.login"): (401, 401, 401, 401, 401),  # no credentials in the body
    ("POST", "pages.logout"): (302, 302, 302, 302, 302),
    ("POST", "api.create_session"): (400, 400, 400, 400, 400),
    ("DELETE", "api.delete_session"): (401, 404, 404, 404, 404),  # not a session's token
    ("GET", "api.current"): (401, 200, 200, 200, 200),
    ("GET", "health.healthz"): (200, 200, 200, 200, 200),
    ("GET", "static"): (200, 200, 200, 200, 200),
    # -- cases: readers only; another mission's case is absent, for admins too --------------
    ("GET", "pages.cases_list"): (302, 403, 200, 200, 200),
    ("GET", "pages.case_page", "own"): (302, 403, 200, 200, 200),
    ("GET", "pages.case_page", "other"): (302, 403, 404, 404, 404),
    ("GET", "api.list_cases"): (401, 403, 200, 200, 200),
    ("GET", "api.get_case", "own"): (401, 403, 200, 200, 200),
    ("GET", "api.get_case", "other"): (401, 403, 404, 404, 404),
    # -- submissions read back: readers of the project, never collectors ---------------------
    ("GET", "api.list_submissions"): (401, 403, 200, 200, 200),
    ("GET", "api.get_submission", "own"): (401, 403, 200, 200, 200),
    ("GET", "api.get_submission", "other"): (401, 403, 404, 404, 404),
    ("GET", "api.submission_xml", "own"): (401, 403, 200, 200, 200),
    ("GET", "api.submission_xml", "other"): (401, 403, 404, 404, 404),
    ("GET", "api.submission_attachments", "own"): (401, 403, 200, 200, 200),
    ("GET", "api.submission_attachments", "other"): (401, 403, 404, 404, 404),
    ("GET", "api.submission_attachment", "own"): (401, 403, 200, 200, 200),
    ("GET", "api.submission_attachment", "other"): (401, 403, 404, 404, 404),
    # -- admin only: queue, audit, projects and their keys -----------------------------------
    ("GET", "pages.queue_page"): (302, 403, 403, 403, 200),
    ("GET", "pages.queue_data"): (302, 403, 403, 403, 200),
    ("POST", "pages.retry_submission"): (302, 403, 403, 403, 302),  # not failed: flashed
    ("POST", "pages.discard_submission"): (302, 403, 403, 403, 302),
    ("GET", "pages.sync_page"): (302, 403, 403, 403, 200),
    ("GET", "pages.sync_data"): (302, 403, 403, 403, 200),
    ("POST", "pages.retry_sync"): (302, 403, 403, 403, 404),  # no such peer
    ("GET", "pages.review_page"): (302, 403, 403, 403, 200),
    ("POST", "pages.accept_review"): (302, 403, 403, 403, 404),  # no such item
    ("POST", "pages.reject_review"): (302, 403, 403, 403, 404),
    ("POST", "pages.request_transfer", "own"): (302, 403, 403, 403, 302),  # no kind: flashed
    ("POST", "pages.request_transfer", "other"): (302, 403, 403, 403, 404),
    ("POST", "pages.revoke_transfer", "own"): (302, 403, 403, 403, 404),  # no such transfer
    ("POST", "pages.revoke_transfer", "other"): (302, 403, 403, 403, 404),
    ("GET", "pages.users_page"): (302, 403, 403, 403, 200),
    ("POST", "pages.create_user"): (302, 403, 403, 403, 400),  # no name
    ("GET", "pages.user_page"): (302, 403, 403, 403, 200),
    ("POST", "pages.change_user_role"): (302, 403, 403, 403, 302),  # no role: flashed
    ("POST", "pages.change_user_projects"): (302, 403, 403, 403, 302),
    ("POST", "pages.change_user_active"): (302, 403, 403, 403, 400),  # neither 0 nor 1
    ("POST", "pages.reset_user_password"): (302, 403, 403, 403, 200),  # shows it once
    ("GET", "pages.audit_page"): (302, 403, 403, 403, 200),
    ("GET", "pages.audit_export"): (302, 403, 403, 403, 200),
    ("GET", "pages.audit_export_json"): (302, 403, 403, 403, 200),
    ("POST", "api.new_project"): (401, 403, 403, 403, 400),  # empty body
    ("POST", "api.new_project_key"): (401, 403, 403, 403, 400),
    ("GET", "api.get_project_key"): (401, 403, 403, 403, 404),  # no key yet
    # -- forms: members read them (collectors too: phones fill them); designers change -------
    ("GET", "pages.forms_list"): (302, 200, 200, 200, 200),
    ("GET", "pages.form_detail"): (302, 200, 200, 200, 200),
    ("GET", "pages.download_source"): (302, 200, 200, 200, 200),
    ("GET", "api.list_projects"): (401, 200, 200, 200, 200),
    ("GET", "api.get_project"): (401, 200, 200, 200, 200),
    ("GET", "api.list_forms"): (401, 200, 200, 200, 200),
    ("GET", "api.get_form"): (401, 200, 200, 200, 200),
    ("GET", "api.form_xml"): (401, 200, 200, 200, 200),
    ("GET", "api.list_versions"): (401, 200, 200, 200, 200),
    ("GET", "api.get_version"): (401, 200, 200, 200, 200),
    ("GET", "api.version_xml"): (401, 200, 200, 200, 200),
    ("GET", "api.list_attachments"): (401, 200, 200, 200, 200),
    ("GET", "api.get_attachment"): (401, 404, 404, 404, 404),  # the form has no media
    ("GET", "api.get_draft"): (401, 404, 404, 404, 404),  # no draft yet
    ("GET", "api.draft_xml"): (401, 404, 404, 404, 404),
    ("GET", "api.list_draft_attachments"): (401, 404, 404, 404, 404),
    ("GET", "api.get_draft_attachment"): (401, 404, 404, 404, 404),
    ("GET", "pages.upload_form"): (302, 403, 403, 200, 200),
    ("POST", "pages.upload_form"): (302, 403, 403, 400, 400),  # no file
    ("POST", "pages.change_state"): (302, 403, 403, 400, 400),  # no state
    ("POST", "pages.publish_draft"): (302, 403, 403, 302, 302),
    ("POST", "pages.upload_media"): (302, 403, 403, 302, 302),
    ("POST", "api.create_form"): (401, 403, 403, 400, 400),
    ("PATCH", "api.update_form"): (401, 403, 403, 200, 200),
    ("POST", "api.create_draft"): (401, 403, 403, 200, 200),
    ("POST", "api.publish_draft"): (401, 403, 403, 409, 409),  # the draft's version is taken
    ("POST", "api.upload_draft_attachment"): (401, 403, 403, 404, 404),
    ("DELETE", "api.delete_draft"): (401, 403, 403, 200, 404),  # the designer deleted it
    # -- app users (phones' access): designers and admins ------------------------------------
    ("GET", "pages.app_users"): (302, 403, 403, 200, 200),
    ("POST", "pages.app_users"): (302, 403, 403, 302, 302),
    ("GET", "pages.app_user_detail"): (302, 403, 403, 200, 200),
    ("POST", "pages.app_user_detail"): (302, 403, 403, 302, 302),
    ("POST", "pages.revoke_app_user"): (302, 403, 403, 302, 302),
    ("GET", "api.list_app_users"): (401, 403, 403, 200, 200),
    ("POST", "api.create_app_user"): (401, 403, 403, 400, 400),  # no displayName
    ("DELETE", "api.revoke_app_user"): (401, 403, 403, 200, 200),
    ("GET", "api.app_user_qr"): (401, 403, 403, 200, 200),
    ("POST", "api.assign_form"): (401, 403, 403, 200, 200),
    ("DELETE", "api.assign_form"): (401, 403, 403, 200, 200),
    # -- OpenRosa with a user's password: collecting roles, never viewers --------------------
    ("GET", "openrosa.root_form_list"): (401, 200, 403, 200, 200),
    ("GET", "openrosa.project_form_list"): (401, 200, 403, 200, 200),
    ("GET", "openrosa.project_manifest"): (401, 200, 403, 200, 200),
    ("GET", "openrosa.project_integrity"): (401, 404, 403, 404, 404),  # no such dataset
    ("POST", "openrosa.root_submission"): (401, 400, 403, 400, 400),  # no XML part
    ("POST", "openrosa.project_submission"): (401, 400, 403, 400, 400),
    # -- OpenRosa with an app user's key: no role opens them without the key -----------------
    ("GET", "openrosa.key_form_list"): (403, 403, 403, 403, 403),
    ("GET", "openrosa.key_form_xml"): (403, 403, 403, 403, 403),
    ("GET", "openrosa.key_version_xml"): (403, 403, 403, 403, 403),
    ("GET", "openrosa.key_manifest"): (403, 403, 403, 403, 403),
    ("GET", "openrosa.key_media"): (403, 403, 403, 403, 403),
    ("GET", "openrosa.key_integrity"): (403, 403, 403, 403, 403),
    ("POST", "openrosa.key_submission"): (403, 403, 403, 403, 403),
    # -- sync: peers sign their batches; a login opens nothing -------------------------------
    ("POST", "sync.inbox"): (411, 411, 411, 411, 411),
}

#: Routes that take a case's uuid: probed for a case of this mission and of another.
CASE_ROUTES = {
    "pages.case_page",
    "api.get_case",
    "pages.request_transfer",
    "pages.revoke_transfer",
}
#: Routes that list cases: the other mission's case must never appear in them.
CASE_LISTS = {"pages.cases_list", "api.list_cases"}
#: Routes that take a submission's instance id: probed with one of each case.
SUBMISSION_ROUTES = {
    "api.get_submission",
    "api.submission_xml",
    "api.submission_attachments",
    "api.submission_attachment",
}


@dataclass
class Place:
    """Ids that exist, for building every URL."""

    params: dict[str, object]
    own_case: str
    other_case: str
    #: instance ids of a submission of the own case and of the other mission's case
    own_submission: str
    other_submission: str


def _case(project_id: int, mission: str) -> str:
    person = Person(first_name="Probe", citizenship=["KHM"])
    db.session.add(person)
    db.session.flush()
    case = Case(project_id=project_id, person_id=person.id, owner_mission=mission)
    db.session.add(case)
    db.session.flush()
    return case.uuid


def _submission_of(client, project_id: int, token: str, case_uuid: str) -> str:
    """A submission sent by a phone, with a photo, as if normalized into `case_uuid`."""
    instance_id = f"uuid:{uuid_module.uuid4()}"
    xml = (
        f'<data id="household" version="1"><q_name>x</q_name><q_ok>yes</q_ok>'
        f"<meta><instanceID>{instance_id}</instanceID></meta></data>"
    ).encode()
    posted = client.post(
        f"/v1/key/{token}/projects/{project_id}/submission",
        data=multipart(xml),
        headers={"X-OpenRosa-Version": "1.0"},
    )
    assert posted.status_code == 201
    submission = db.session.scalar(select(Submission).where(Submission.instance_id == instance_id))
    submission.case_id = db.session.scalar(select(Case.id).where(Case.uuid == case_uuid))
    stored = storage().save_bytes(b"photo")
    db.session.add(
        SubmissionAttachment(
            submission=submission, name="photo.jpg", blob_key=stored.key, content_type="image/jpeg"
        )
    )
    db.session.commit()
    return instance_id


@pytest.fixture
def place(make, client) -> Place:
    project = make.project()
    form = make.form(project=project)
    app_user, token = create_app_user(project, "Phone")
    grant_form(app_user, form)
    spare_user = make.user("viewer", projects=[project])  # the users pages change this one
    own_case = _case(project.id, "LOCAL")
    other_case = _case(project.id, "MMR-YG")
    db.session.commit()
    own_submission = _submission_of(client, project.id, token, own_case)
    other_submission = _submission_of(client, project.id, token, other_case)
    params = {
        "project_id": project.id,
        "xml_form_id": form.xml_form_id,
        "def_id": form.current_def.id,
        "app_user_id": app_user.id,
        "submission_id": db.session.scalar(select(Submission.id).order_by(Submission.id)),
        "name": "photo.jpg",
        "version": "1",
        "dataset": "cases",
        "token": "not-an-app-user-token",  # key routes: no role opens them without the key
        "kind": "png",
        "filename": "style.css",
        "uuid": own_case,
        "mission_code": "KHM",
        "user_id": spare_user.id,
        "review_id": 1,  # none is open: the review routes answer 404 past the role check
        "transfer_uuid": str(uuid_module.uuid4()),  # none: 404 past the role check
    }
    return Place(params, own_case, other_case, own_submission, other_submission)


#: Reads first, then writes, then deletes; logging out last (it ends the sessions).
METHOD_ORDER = {"GET": 0, "PATCH": 1, "POST": 1, "DELETE": 2}
#: Routes that revoke the app user they name: each request gets an app user of its own.
REVOKING = {"pages.revoke_app_user", "api.revoke_app_user"}


def _routes(app) -> list[tuple[str, str, dict]]:
    """(method, endpoint, arguments) for every route, HEAD and OPTIONS aside, in probe order."""
    routes = [
        (method, rule.endpoint, rule.arguments)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    ]
    return sorted(routes, key=lambda r: (r[1] == "pages.logout", METHOD_ORDER[r[0]], r[1], r[0]))


def _app_user(project) -> int:
    app_user, _ = create_app_user(project, "Spare phone")
    db.session.commit()
    return app_user.id


def _clients(app, make, project) -> dict:
    clients = {"anonymous": app.test_client()}
    for role in ACTORS[1:]:
        user = make.user(role, projects=[project])
        client = app.test_client()
        response = client.post("/login", data={"username": user.name, "password": PASSWORD})
        assert response.status_code == 302, role
        clients[role] = client
    return clients


def test_every_route_answers_each_actor_as_the_table_says(app, make, place):
    from server.projects.models import Project

    project = db.session.get(Project, place.params["project_id"])
    clients = _clients(app, make, project)
    probes = []
    for method, endpoint, arguments in _routes(app):
        if endpoint in CASE_ROUTES:
            variants = [("own", {"uuid": place.own_case}), ("other", {"uuid": place.other_case})]
        elif endpoint in SUBMISSION_ROUTES:
            variants = [
                ("own", {"instance_id": place.own_submission}),
                ("other", {"instance_id": place.other_submission}),
            ]
        else:
            variants = [(None, {})]
        for variant, ids in variants:
            key = (method, endpoint) + ((variant,) if variant else ())
            params = {name: place.params[name] for name in arguments if name not in ids}
            probes.append((key, {**params, **ids}))

    unlisted = sorted({key for key, _ in probes} - set(MATRIX))
    actual = {}
    for key, params in probes:
        statuses = []
        for actor in ACTORS:
            if key[1] in REVOKING:
                params = {**params, "app_user_id": _app_user(project)}
            with app.test_request_context():
                url = url_for(key[1], **params)
            with clients[actor].open(url, method=key[0]) as response:
                if actor == "anonymous" and response.status_code == 302:
                    assert "/login" in response.location, (url, response.location)
                statuses.append(response.status_code)
                if key[1] in CASE_LISTS:
                    assert place.other_case not in response.text, (actor, url)
                    if response.status_code == 200:
                        assert place.own_case in response.text, (actor, url)
                if key[1] == "api.list_submissions":
                    assert place.other_submission not in response.text, (actor, url)
                    if response.status_code == 200:
                        assert place.own_submission in response.text, (actor, url)
        actual[key] = tuple(statuses)
    assert not unlisted, f"routes with no row in MATRIX: {unlisted}"
    wrong = {k: (MATRIX[k], v) for k, v in actual.items() if MATRIX[k] != v}
    assert not wrong, f"(expected, actual) per route, actors {ACTORS}: {wrong}"
    assert not (set(MATRIX) - set(actual)), "rows for routes that no longer exist"
