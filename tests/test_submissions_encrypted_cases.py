"""Managed encryption end to end: a project key, encrypted forms, and the worker decrypting
what Collect encrypted before it becomes a case. Real app, database, Redis and worker."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from sqlalchemy import select, update

from server.cases.models import Case
from server.cases.reading import SubmissionValues
from server.extensions import db
from server.forms import operations as ops
from server.forms.models import Form
from server.forms.xform import NS
from server.projects.keys import active_key, create_managed_key, unlock
from server.projects.models import ProjectKey
from server.storage import storage
from server.submissions.decryption import plaintext_xml, store_passphrase
from server.submissions.encryption import public_key_from_xform
from server.submissions.jobs import process_submission
from server.submissions.models import Submission
from tests.cases_support import SCREENING_MD, screening_xml
from tests.factories import PASSWORD, app_user_with_forms, multipart, simple_form_md, xlsx_from_md
from tests.odk_encryption import CollectUpload, encrypt_submission_as_collect
from tests.test_submissions_encryption import CENTRAL_TWO_XML, CENTRAL_TWO_XML_ENC, b64

PASSPHRASE = "a long project passphrase"
LIST_NS = {"x": "http://openrosa.org/xforms/xformsList"}


@dataclass
class Phone:
    project_id: int
    token: str
    public_key: rsa.RSAPublicKey

    def post(self, client, xml: bytes, files: dict[str, bytes] | None = None):
        return client.post(
            f"/v1/key/{self.token}/projects/{self.project_id}/submission",
            data=multipart(xml, files),
            headers={"X-OpenRosa-Version": "1.0"},
        )

    def post_encrypted(self, client, xml: bytes, media: dict[str, bytes] | None = None):
        upload = encrypt_submission_as_collect(xml, media or {}, self.public_key)
        response = self.post(client, upload.envelope, upload.files)
        assert response.status_code == 201, response.data
        return upload


@pytest.fixture
def secrets(app, tmp_path, monkeypatch) -> Path:
    """Where the worker looks for passphrases (not written yet); no PEM keys."""
    folder = tmp_path / "secrets"
    folder.mkdir(mode=0o700)
    monkeypatch.setitem(app.config, "KEY_PASSPHRASES_FILE", str(folder / "passphrases.json"))
    monkeypatch.setitem(app.config, "PRIVATE_KEY_FILES", {})
    return folder / "passphrases.json"


@pytest.fixture
def phone(make, secrets) -> Phone:
    """A project with a managed key, the mapped screening form published after it."""
    project = make.project()
    key = create_managed_key(project, PASSPHRASE, "the usual one")
    db.session.commit()
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    return Phone(project.id, token, public_key_from_xform(key.public_key))


def drain(runner) -> None:
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output


def keys_command(runner, *args: str, stdin: str | None = None):
    return runner.invoke(args=["keys", *args], input=stdin)


def submission(instance_id: str) -> Submission:
    db.session.expire_all()
    return db.session.scalar(select(Submission).where(Submission.instance_id == instance_id))


def case_by_uuid(uuid_: str) -> Case | None:
    return db.session.scalar(select(Case).where(Case.uuid == uuid_))


def login(client, user) -> dict[str, str]:
    token = client.post("/v1/sessions", json={"email": user.name, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json['token']}"}


def served_xform(client, phone: Phone, xml_form_id: str) -> etree._Element:
    """The XForm as Collect fetches it: the formList's downloadUrl."""
    base = f"/v1/key/{phone.token}/projects/{phone.project_id}"
    listing = etree.fromstring(client.get(f"{base}/formList").data)
    [url] = [
        x.findtext("x:downloadUrl", namespaces=LIST_NS)
        for x in listing.findall("x:xform", LIST_NS)
        if x.findtext("x:formID", namespaces=LIST_NS) == xml_form_id
    ]
    return etree.fromstring(client.get(url.split("localhost", 1)[1]).data)


def submission_key_attribute(xform: etree._Element) -> str | None:
    element = xform.find("h:head/xf:model/xf:submission", NS)
    return None if element is None else element.get("base64RsaPublicKey")


def flip_byte(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


# ---- the key and the forms ------------------------------------------------------------------


def test_only_admins_turn_on_managed_encryption(client, make):
    project = make.project()
    for role in ("designer", "collector", "viewer"):
        auth = login(client, make.user(role, projects=[project]))
        body = {"passphrase": PASSPHRASE}
        assert (
            client.post(f"/v1/projects/{project.id}/key", json=body, headers=auth).status_code
            == 403
        )
        assert client.get(f"/v1/projects/{project.id}/key", headers=auth).status_code == 403
    admin = login(client, make.user("admin"))
    url = f"/v1/projects/{project.id}/key"
    assert client.get(url, headers=admin).status_code == 404
    for body in ({"passphrase": "too short"}, {"passphrase": 1234567890123}, {}):
        response = client.post(url, json=body, headers=admin)
        assert response.status_code == 400 and "10 characters" in response.json["message"]
    assert (
        client.post(
            "/v1/projects/999/key", json={"passphrase": PASSPHRASE}, headers=admin
        ).status_code
        == 404
    )

    response = client.post(url, json={"passphrase": PASSPHRASE, "hint": "the usual"}, headers=admin)
    assert response.status_code == 200, response.json
    shown = response.json
    assert shown["hint"] == "the usual" and shown["managed"] is True and shown["keyId"]
    assert not {"private", "salt", "iv", "passphrase"} & set(shown)
    assert client.get(url, headers=admin).json == shown
    again = client.post(url, json={"passphrase": PASSPHRASE + "!"}, headers=admin)
    assert again.status_code == 409 and again.json["code"] == 409.4

    key = db.session.get(ProjectKey, shown["keyId"])
    assert PASSPHRASE.encode() not in key.encrypted_private_key
    assert key.public_key == shown["public"] and key.iterations >= 600_000
    assert isinstance(unlock(key, PASSPHRASE), rsa.RSAPrivateKey)


def test_forms_published_after_the_key_carry_it_for_collect(client, make):
    project = make.project()
    make.form(simple_form_md("household"), project=project)
    make.form(simple_form_md("intake"), project=project, draft=True)
    admin = login(client, make.user("admin"))
    response = client.post(
        f"/v1/projects/{project.id}/key", json={"passphrase": PASSPHRASE}, headers=admin
    )
    assert response.json["unencryptedForms"] == ["household"]
    public_key = response.json["public"]
    make.form(SCREENING_MD, project=project)
    _, token = app_user_with_forms(project)
    phone = Phone(project.id, token, public_key_from_xform(public_key))

    xform = served_xform(client, phone, "mini_screening")
    assert submission_key_attribute(xform) == public_key  # what makes Collect encrypt
    assert public_key_from_xform(public_key).public_numbers() == phone.public_key.public_numbers()
    # Published before the key: unchanged for phones until its next version.
    assert submission_key_attribute(served_xform(client, phone, "household")) is None
    # The draft was encrypted when the key was made, as Central does.
    intake = db.session.scalar(select(Form).where(Form.xml_form_id == "intake"))
    assert intake.draft_def.public_key == public_key
    assert f'base64RsaPublicKey="{public_key}"' in intake.draft_def.xml

    def publish(markdown: str):
        upload = ops.Upload("form.xlsx", xlsx_from_md(markdown))
        result = ops.publish_form(project, ops.prepare_form(upload))
        db.session.commit()
        return result

    # Publishing the same files again (setup does, at every start) changes nothing.
    assert publish(SCREENING_MD).changed is False
    assert publish(simple_form_md("household")).changed is False
    household = publish(simple_form_md("household", version="2"))
    assert household.changed and household.form_def.public_key == public_key
    assert submission_key_attribute(served_xform(client, phone, "household")) == public_key
    assert keys_unencrypted(client, project.id, admin) == []


def keys_unencrypted(client, project_id: int, auth) -> list[str]:
    return client.get(f"/v1/projects/{project_id}/key", headers=auth).json["unencryptedForms"]


# ---- the worker -----------------------------------------------------------------------------


def test_an_encrypted_screening_becomes_its_case(client, runner, phone, secrets, caplog):
    caplog.set_level(logging.DEBUG)
    store_passphrase(secrets, phone.project_id, PASSPHRASE)
    marker = f"Marker{uuid.uuid4().hex[:12]}"
    xml, instance_id, case_uuid = screening_xml(first=marker)
    photo = os.urandom(5000)
    upload = phone.post_encrypted(client, xml, {"photo.jpg": photo})
    drain(runner)

    row = submission(instance_id)
    assert (row.state, row.problems, row.problem) == ("normalized", [], None)
    case = case_by_uuid(case_uuid)
    assert row.case_id == case.id and case.reference == f"CB-{case_uuid[:8]}"
    assert (case.person.first_name, case.person.gender) == (marker, "Feminine")
    assert case.victim.trafficking_status == "ActualVictimOfTrafficking"
    assert len(case.movement_events) == 2 and case.consent.given is True
    # Kept as received; the plaintext was in memory only: not in the row, files or logs.
    assert row.encrypted and row.xml == upload.envelope
    assert plaintext_xml(row) == xml
    assert marker.encode() not in row.xml
    for path in storage().root.rglob("*"):
        assert not path.is_file() or marker.encode() not in path.read_bytes()
    assert marker not in caplog.text


def test_without_the_passphrase_it_waits_visibly_until_unlocked(client, runner, phone, secrets):
    xml, instance_id, case_uuid = screening_xml()
    phone.post_encrypted(client, xml)
    drain(runner)
    row = submission(instance_id)
    assert row.state == "needs_review" and case_by_uuid(case_uuid) is None
    [problem] = row.problems
    assert problem["field"] == "encryption"
    assert "not unlocked on this server" in problem["message"]
    assert f"keys unlock --project {phone.project_id}" in problem["message"]
    status = keys_command(runner, "status", "--project", str(phone.project_id))
    assert "not unlocked" in status.output and "1 submission(s) waiting" in status.output

    wrong = keys_command(
        runner, "unlock", "--project", str(phone.project_id), stdin="nope nope nope\n"
    )
    assert wrong.exit_code == 1 and "does not unlock" in wrong.output
    assert "the usual one" in wrong.output and not secrets.exists()

    right = keys_command(
        runner, "unlock", "--project", str(phone.project_id), stdin=PASSPHRASE + "\n"
    )
    assert right.exit_code == 0, right.output
    assert "queued 1 submission(s)" in right.output
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert json.loads(secrets.read_text()) == {str(phone.project_id): PASSPHRASE}
    assert submission(instance_id).state == "queued"
    drain(runner)

    row = submission(instance_id)
    assert (row.state, row.problems) == ("normalized", [])
    assert case_by_uuid(case_uuid).person.first_name == "Sokha"
    status = keys_command(runner, "status")
    assert "unlocked for the worker; 0 submission(s) waiting" in status.output


def test_a_wrong_or_unprotected_passphrase_file_is_a_visible_problem(
    client, runner, phone, secrets
):
    secrets.write_text(json.dumps({str(phone.project_id): "not the passphrase"}))
    secrets.chmod(0o600)
    xml, instance_id, case_uuid = screening_xml()
    phone.post_encrypted(client, xml)
    drain(runner)
    assert "does not unlock its key" in submission(instance_id).problems[0]["message"]

    secrets.write_text(json.dumps({str(phone.project_id): PASSPHRASE}))
    secrets.chmod(0o644)
    assert "Queued 1" in keys_command(runner, "process", "--project", str(phone.project_id)).output
    drain(runner)
    row = submission(instance_id)
    assert (
        row.state == "needs_review" and "can be read by other users" in row.problems[0]["message"]
    )

    secrets.chmod(0o600)
    keys_command(runner, "process", "--project", str(phone.project_id))
    drain(runner)
    assert submission(instance_id).state == "normalized" and case_by_uuid(case_uuid) is not None


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _altered_photo(xml: bytes, key: rsa.RSAPublicKey) -> CollectUpload:
    upload = encrypt_submission_as_collect(xml, {"photo.jpg": os.urandom(3000)}, key)
    upload.files["photo.jpg.enc"] = flip_byte(upload.files["photo.jpg.enc"], 1000)
    return upload


def _altered_xml(xml: bytes, key: rsa.RSAPublicKey) -> CollectUpload:
    upload = encrypt_submission_as_collect(xml, {"photo.jpg": os.urandom(3000)}, key)
    upload.files["submission.xml.enc"] = flip_byte(upload.files["submission.xml.enc"], 3)
    return upload


def _for_another_key(xml: bytes, _key: rsa.RSAPublicKey) -> CollectUpload:
    return encrypt_submission_as_collect(xml, {}, new_private_key().public_key())


@pytest.mark.parametrize(
    ("make_upload", "message"),
    [
        (_altered_photo, "signature does not match"),
        (_altered_xml, ""),
        (_for_another_key, "cannot be opened with this private key"),
    ],
)
def test_altered_or_misdirected_submissions_need_review_without_retries(
    client, runner, phone, secrets, make_upload, message
):
    store_passphrase(secrets, phone.project_id, PASSPHRASE)
    xml, instance_id, case_uuid = screening_xml()
    upload = make_upload(xml, phone.public_key)
    assert phone.post(client, upload.envelope, upload.files).status_code == 201
    drain(runner)

    row = submission(instance_id)
    assert (row.state, row.problem) == ("needs_review", None)  # not 'failed', not retried
    [problem] = row.problems
    assert problem["field"] == "encryption" and message in problem["message"]
    assert case_by_uuid(case_uuid) is None
    keys_command(runner, "process", "--project", str(phone.project_id))
    drain(runner)
    assert submission(instance_id).state == "needs_review"


def test_an_xml_file_sent_later_is_processed_then(client, runner, phone, secrets):
    store_passphrase(secrets, phone.project_id, PASSPHRASE)
    xml, instance_id, case_uuid = screening_xml()
    upload = encrypt_submission_as_collect(xml, {"photo.jpg": os.urandom(100)}, phone.public_key)
    first = {"photo.jpg.enc": upload.files["photo.jpg.enc"]}
    assert phone.post(client, upload.envelope, first).status_code == 201
    drain(runner)
    row = submission(instance_id)
    assert row.state == "needs_review" and "has not arrived yet" in row.problems[0]["message"]

    assert phone.post(client, upload.envelope, upload.files).status_code == 201
    keys_command(runner, "process", "--project", str(phone.project_id))
    drain(runner)
    assert submission(instance_id).state == "normalized" and case_by_uuid(case_uuid)


def test_keys_create_command_reads_the_passphrase_from_stdin(runner, make):
    project = make.project()
    short = keys_command(runner, "create", "--project", str(project.id), stdin="short\n")
    assert short.exit_code == 1 and "at least 10" in short.output
    made = keys_command(
        runner, "create", "--project", str(project.id), "--hint", "h", stdin=PASSPHRASE + "\n"
    )
    assert made.exit_code == 0, made.output
    db.session.expire_all()
    assert unlock(active_key(project.id), PASSPHRASE)


# ---- ODK Central's own key and submissions ------------------------------------------------


def test_central_encrypted_submission_decrypts_for_normalization(
    client, runner, make, secrets, shared_reference, tmp_path, monkeypatch, app
):
    """encrypted.xml carries Central's test key (priv.pem); encrypted.two.xml is from Collect."""
    central = shared_reference / "odk" / "central"
    project = make.project()
    managed = create_managed_key(project, PASSPHRASE)  # a form's own key wins over it
    db.session.commit()
    upload = ops.Upload("encrypted.xml", (central / "forms" / "encrypted.xml").read_bytes())
    form = ops.publish_form(project, ops.prepare_form(upload)).form
    db.session.commit()
    own_key = form.current_def.public_key
    assert own_key != managed.public_key
    assert f'base64RsaPublicKey="{own_key}"' in form.current_def.xml
    _, token = app_user_with_forms(project)
    phone = Phone(project.id, token, public_key_from_xform(own_key))

    pem = tmp_path / "secrets" / "central.pem"
    shutil.copy(central / "priv.pem", pem)
    pem.chmod(0o600)
    monkeypatch.setitem(app.config, "PRIVATE_KEY_FILES", {str(project.id): str(pem)})
    # Let normalization read this unmapped form, and see what it was given.
    form.current_def.case_mapping = {"read": "everything"}
    db.session.commit()
    seen: list[bytes] = []

    def spy(root, _mapping):
        seen.append(etree.tostring(root, method="c14n"))
        return SubmissionValues(records=[], problems=[])

    monkeypatch.setattr("server.cases.operations.read_submission", spy)

    two = (central / "submissions" / "encrypted.two.xml").read_bytes()
    files = {"submission.xml.enc": b64(CENTRAL_TWO_XML_ENC)}  # the photo is not published
    assert phone.post(client, two, files).status_code == 201
    one = (central / "submissions" / "encrypted.one.xml").read_bytes()
    assert phone.post(client, one).status_code == 201  # its .enc files are not published
    drain(runner)

    two_row = submission("uuid:99b303d9-6494-477b-a30d-d8aae8867335")
    assert (two_row.state, two_row.problems) == ("normalized", [])
    assert two_row.missing_attachments == ["1561432532482.jpg.enc"]
    assert plaintext_xml(two_row) == CENTRAL_TWO_XML
    assert seen == [etree.tostring(etree.fromstring(CENTRAL_TWO_XML), method="c14n")]
    one_row = submission("uuid:dcf4a151-5088-453f-99e6-369d67828f7a")
    assert one_row.state == "needs_review"
    assert "submission.xml.enc has not arrived yet" in one_row.problems[0]["message"]

    # Another key for the project: nothing opens, and the admin is told so.
    other = tmp_path / "secrets" / "other.pem"
    other.write_bytes(
        new_private_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    other.chmod(0o600)
    monkeypatch.setitem(app.config, "PRIVATE_KEY_FILES", {str(phone.project_id): [str(other)]})
    form_id, instance_id = two_row.form_id, two_row.instance_id
    db.session.execute(update(Submission).where(Submission.id == two_row.id).values(state="queued"))
    db.session.commit()  # as `casebridge keys process` re-queues it
    assert process_submission(form_id, instance_id) == "needs_review"
    assert "not unlocked on this server" in submission(two_row.instance_id).problems[0]["message"]
