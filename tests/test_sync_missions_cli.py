"""`casebridge missions init|add|list|remove` and the registry file they keep."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sync.keys import load_mission_key, public_key_text
from sync.registry import RegistryError, load_registry
from tests.sync_support import new_key


@pytest.fixture
def registry_file(app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "MISSION_CODE", "THA")
    monkeypatch.setitem(app.config, "MISSIONS_FILE", str(tmp_path / "missions.json"))
    monkeypatch.setitem(app.config, "MISSION_KEY_FILE", str(tmp_path / "instance" / "tha.pem"))
    return tmp_path / "missions.json"


def add(runner, code="KHM", *extra, countries="KHM", key=None):
    key = key or public_key_text(new_key().public_key())
    return runner.invoke(
        args=[
            "missions",
            "add",
            code,
            "--name",
            f"IOM {code}",
            "--countries",
            countries,
            "--url",
            f"https://{code.lower()}.example.org/",
            "--public-key",
            key,
            *extra,
        ]
    )


def test_init_writes_a_private_key_only_the_owner_reads_and_prints_the_public_one(
    runner, registry_file, tmp_path
):
    result = runner.invoke(args=["missions", "init"])
    assert result.exit_code == 0, result.output
    key_file = tmp_path / "instance" / "tha.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public = public_key_text(load_mission_key(key_file).public_key())
    assert result.output.strip().splitlines()[-1] == public
    assert "PRIVATE" not in result.output and key_file.read_text() not in result.output
    assert not registry_file.exists()  # no --name/--countries/--url: the key only

    again = runner.invoke(args=["missions", "init"])
    assert again.exit_code == 1 and "already has a key" in again.output
    assert public_key_text(load_mission_key(key_file).public_key()) == public  # untouched


def test_init_can_register_this_mission_with_its_countries(runner, registry_file):
    result = runner.invoke(
        args=[
            "missions",
            "init",
            "--name",
            "IOM Thailand",
            "--countries",
            "tha",
            "--url",
            "https://tha.example.org",
        ]
    )
    assert result.exit_code == 0, result.output
    own = load_registry(registry_file).get("THA")
    assert own.countries == ("THA",) and own.public_key == result.output.split()[-1]


def test_add_then_list(runner, registry_file):
    result = add(runner, "KHM", "--fields", "prs_Gender,hte_Country", countries="KHM,LAO")
    assert result.exit_code == 0, result.output
    data = json.loads(registry_file.read_text())
    entry = data["missions"]["KHM"]
    assert entry["countries"] == ["KHM", "LAO"] and entry["fields"] == ["hte_Country", "prs_Gender"]
    assert entry["base_url"] == "https://khm.example.org"
    assert add(runner, "MMR", countries="MMR").exit_code == 0

    listing = runner.invoke(args=["missions", "list"])
    assert listing.exit_code == 0
    lines = listing.output.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["KHM", "MMR"]
    assert "fields=hte_Country,prs_Gender" in lines[0] and "fields=-" in lines[1]

    assert runner.invoke(args=["missions", "remove", "MMR"]).exit_code == 0
    assert set(load_registry(registry_file).missions) == {"KHM"}


@pytest.mark.parametrize(
    ("extra", "countries", "key", "message"),
    [
        ((), "KHM,XYZ", None, "Unknown country code 'XYZ'"),
        ((), "KH", None, "Unknown country code 'KH'"),
        ((), "KHM", "not-a-key", "not base64"),
        ((), "KHM", "AAAA", "32 bytes"),
        (("--fields", "prs_MobilePhone"), "KHM", None, "Local-only fields never leave"),
        (("--fields", "prs_ShoeSize"), "KHM", None, "Unknown case fields: prs_ShoeSize"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    runner, registry_file, extra, countries, key, message
):
    result = add(runner, "KHM", *extra, countries=countries, key=key)
    assert result.exit_code == 1 and message in result.output
    assert not registry_file.exists()


def test_a_duplicate_code_is_refused_unless_replaced(runner, registry_file):
    assert add(runner, "KHM").exit_code == 0
    duplicate = add(runner, "KHM")
    assert duplicate.exit_code == 1 and "already registered" in duplicate.output
    assert add(runner, "KHM", "--replace", countries="LAO").exit_code == 0
    assert load_registry(registry_file).get("KHM").countries == ("LAO",)


def test_a_bad_code_or_url_is_refused(runner, registry_file):
    assert "Mission code 'khm'" in add(runner, "khm").output
    result = runner.invoke(
        args=["missions", "add", "KHM", "--name", "x", "--countries", "KHM", "--url", "ftp://x"]
        + ["--public-key", public_key_text(new_key().public_key())]
    )
    assert result.exit_code == 1 and "Base URL" in result.output


@pytest.mark.parametrize(
    ("url", "taken"),
    [
        ("http://khm.example.org", False),
        ("http://10.0.0.7:8000", False),
        ("https://khm.example.org", True),
        ("http://127.0.0.1:8001", True),
        ("http://localhost:8001", True),
    ],
)
def test_a_peer_is_reached_over_https_or_on_this_machine_only(runner, registry_file, url, taken):
    result = runner.invoke(
        args=["missions", "add", "KHM", "--name", "x", "--countries", "KHM", "--url", url]
        + ["--public-key", public_key_text(new_key().public_key())]
    )
    assert (result.exit_code == 0) == taken, result.output
    if not taken:
        assert "use https" in result.output and load_registry(registry_file).get("KHM") is None


def test_a_broken_registry_file_is_named_in_the_error(runner, registry_file):
    registry_file.write_text('{"format": "casebridge-missions/1", "missions": {"KHM": {}}}')
    with pytest.raises(RegistryError, match="mission KHM"):
        load_registry(registry_file)
    result = runner.invoke(args=["missions", "list"])
    assert result.exit_code == 1 and str(registry_file) in result.output


def test_the_example_registry_is_valid():
    example = Path(__file__).resolve().parent.parent / "config" / "missions.example.json"
    registry = load_registry(example)
    assert set(registry.missions) == {"KHM", "THA"}
    assert registry.get("THA").fields == frozenset()  # default deny


# ---- the linkage secret -----------------------------------------------------------------


@pytest.fixture
def linkage_file(app, monkeypatch, tmp_path) -> Path:
    path = tmp_path / "instance" / "linkage.key"
    monkeypatch.setitem(app.config, "LINKAGE_KEY_FILE", str(path))
    return path


def test_linkage_key_generate_writes_a_0600_secret_it_never_prints(runner, linkage_file):
    from sync.linkage_secret import fingerprint, load_linkage_secret

    result = runner.invoke(args=["missions", "linkage-key", "generate"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(linkage_file.stat().st_mode) == 0o600
    secret = load_linkage_secret(linkage_file)
    assert linkage_file.read_text().strip() not in result.output
    assert f"Fingerprint: {fingerprint(secret)}" in result.output
    again = runner.invoke(args=["missions", "linkage-key", "generate"])
    assert again.exit_code != 0 and "exists" in again.output
    assert load_linkage_secret(linkage_file) == secret, "not overwritten without --replace"
    shown = runner.invoke(args=["missions", "linkage-key", "show"])
    assert (
        fingerprint(secret) in shown.output and linkage_file.read_text().strip() not in shown.output
    )


def test_linkage_key_set_takes_the_groups_secret_from_stdin_and_marks_persons(
    runner, linkage_file, app_context, make
):
    import base64
    import uuid

    from server.cases.models import Case, Person
    from server.extensions import db
    from sync.linkage_secret import load_linkage_secret

    project = make.project()
    person = Person(uuid=str(uuid.uuid4()), first_name="Dara", citizenship=[], needs_linkage=False)
    db.session.add(
        Case(uuid=str(uuid.uuid4()), project_id=project.id, person=person, owner_mission="KHM")
    )
    db.session.commit()
    text = base64.b64encode(bytes(range(32))).decode()
    assert runner.invoke(args=["missions", "linkage-key", "set"], input="short").exit_code != 0
    result = runner.invoke(args=["missions", "linkage-key", "set"], input=text + "\n")
    assert result.exit_code == 0, result.output
    assert load_linkage_secret(linkage_file) == bytes(range(32)) and text not in result.output
    db.session.expire_all()
    assert db.session.get(Person, person.id).needs_linkage is True, "encoded again"
    encoded = runner.invoke(args=["sync", "encode"])
    assert encoded.exit_code == 0 and "1 person(s) encoded" in encoded.output
    db.session.expire_all()
    assert db.session.get(Person, person.id).needs_linkage is False


def test_without_a_linkage_secret_show_says_linkage_is_off(runner, linkage_file):
    result = runner.invoke(args=["missions", "linkage-key", "show"])
    assert result.exit_code == 0 and "linkage is off" in result.output
    assert runner.invoke(args=["sync", "encode"]).exit_code != 0
