"""No duplicate persons: a case from THA whose person KHM (this app) registered before is
linked to that person; a possible match opens a review item; only encodings travel."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import uuid

import pytest
from sqlalchemy import func, select

from server.cases.models import Case, CaseVersion, Consent, Episode, Person
from server.cases.queries import is_retrafficked
from server.extensions import db
from sync.linkage import Encoder, PersonValues
from sync.linkage_secret import new_secret, write_linkage_secret
from sync.linkage_store import current_linkage, find_matches, refresh_encodings
from sync.models import PersonLinkage, SyncOutbox, SyncReview
from sync.outbox import record_case_change
from sync.registry import Registry
from tests.sync_support import as_khm_knowing_tha, mission, new_key
from tests.test_sync_apply import deliver, tombstone, upsert

BIRTHDATE = dt.date(1990, 7, 15)


@pytest.fixture
def secret(app, monkeypatch, tmp_path) -> bytes:
    """The linkage secret THA and KHM share, in this app's key file."""
    value = new_secret()
    path = tmp_path / "linkage.key"
    write_linkage_secret(value, path)
    monkeypatch.setitem(app.config, "LINKAGE_KEY_FILE", str(path))
    return value


@pytest.fixture
def tha_key(app, monkeypatch, tmp_path):
    """This app is KHM; THA is its registered peer. Returns THA's signing key."""
    key = new_key()
    as_khm_knowing_tha(monkeypatch, app, tmp_path, key)
    return key


@pytest.fixture
def registered(make, secret) -> Person:
    """Sreypov Chhorn, registered at KHM years before, with the episode of that time."""
    project = make.project()
    person = Person(
        uuid=str(uuid.uuid4()),
        first_name="Sreypov",
        second_name="Chhorn",
        birthdate=BIRTHDATE,
        birth_year=BIRTHDATE.year,
        gender="Feminine",
        citizenship=["KHM"],
    )
    case = Case(uuid=str(uuid.uuid4()), project_id=project.id, person=person, owner_mission="KHM")
    case.episodes.append(Episode(uuid=str(uuid.uuid4()), person=person))
    db.session.add(case)
    db.session.commit()
    return person


def encoding(secret: bytes, first: str, family: str, birthdate=BIRTHDATE, ref=None) -> dict:
    """What THA sends: its person encoded with the shared secret."""
    values = PersonValues(
        ref=ref or str(uuid.uuid4()),
        first_name=first,
        second_name=family,
        birthdate=birthdate,
        birth_year=birthdate.year if birthdate else None,
        gender="Feminine",
    )
    return Encoder(secret).encode(values).as_json()


def screening(case_uuid: str, linkage: dict | None, version: int = 1) -> dict:
    episode = {
        "dataset": "episodes",
        "uuid": str(uuid.uuid4()),
        "fields": {"vic_TypeOfExploitation": ["ForcedLabour"]},
    }
    change = upsert(
        version,
        {"prs_Gender": "Masculine", "prs_Citizenship": ["KHM"], "cas_Status": "Active"},
        [episode],
        case_uuid=case_uuid,
    )
    if linkage is not None:
        change["payload"]["linkage"] = linkage
    return change


def persons() -> int:
    return db.session.scalar(select(func.count()).select_from(Person))


def case_of(case_uuid: str) -> Case:
    db.session.expire_all()
    return db.session.scalar(select(Case).where(Case.uuid == case_uuid))


def test_a_certain_match_links_the_case_to_the_existing_person_and_flags_retrafficking(
    client, tha_key, app_context, registered, secret
):
    case_uuid = str(uuid.uuid4())
    change = screening(case_uuid, encoding(secret, "Srey Pov", "Chorn"))  # transliterated
    assert deliver(client, tha_key, change) == ["applied"]

    copy = case_of(case_uuid)
    assert copy.person_id == registered.id and persons() == 1, "no second person"
    assert len(copy.person.cases) == 2 and len(copy.person.episodes) == 2
    assert is_retrafficked(copy)
    assert copy.person.gender == "Feminine", "KHM's own value stays; THA's fills blanks only"
    assert copy.versions[-1].changes["linked"] == {"status": "certain", "reason": "birthdate"}
    assert db.session.scalar(select(func.count()).select_from(SyncReview)) == 0


def test_the_same_change_twice_links_once_and_later_versions_do_not_match_again(
    client, tha_key, app_context, registered, secret
):
    case_uuid = str(uuid.uuid4())
    change = screening(case_uuid, encoding(secret, "Srey Pov", "Chorn"))
    assert deliver(client, tha_key, change) == ["applied"]
    assert deliver(client, tha_key, change) == ["duplicate"]
    newer = screening(case_uuid, encoding(secret, "Srey Pov", "Chorn"), version=2)
    assert deliver(client, tha_key, newer) == ["applied"]
    assert persons() == 1
    assert case_of(case_uuid).person_id == registered.id
    assert len(registered.cases) == 2


def test_a_possible_match_makes_a_person_of_its_own_and_opens_a_review_item(
    client, tha_key, app_context, registered, secret
):
    case_uuid = str(uuid.uuid4())
    no_date = encoding(secret, "Sreypov", "Chhorn", birthdate=None)
    assert deliver(client, tha_key, screening(case_uuid, no_date)) == ["applied"]

    copy = case_of(case_uuid)
    assert copy.person_id != registered.id and persons() == 2
    assert not is_retrafficked(copy)
    [review] = db.session.scalars(select(SyncReview)).all()
    assert (review.kind, review.state, review.case_uuid, review.person_id) == (
        "possible_duplicate",
        "open",
        case_uuid,
        copy.person_id,
    )
    [candidate] = review.candidates
    assert candidate["person_id"] == registered.id and candidate["reason"] == "name"
    assert candidate["score"] > 0
    assert "Sreypov" not in json.dumps(review.candidates) + str(review.reason)
    kept = db.session.get(PersonLinkage, copy.person_id)
    assert kept.source == "peer", "the copy's person keeps THA's encoding: its names stayed"


def test_without_an_encoding_or_a_secret_a_copy_gets_its_own_person(
    client, tha_key, app_context, registered, secret, app, monkeypatch, tmp_path
):
    plain = str(uuid.uuid4())
    assert deliver(client, tha_key, screening(plain, None)) == ["applied"]
    monkeypatch.setitem(app.config, "LINKAGE_KEY_FILE", str(tmp_path / "absent.key"))
    other = str(uuid.uuid4())
    assert deliver(client, tha_key, screening(other, encoding(secret, "Sreypov", "Chhorn"))) == [
        "applied"
    ]
    assert persons() == 3


def test_a_malformed_encoding_is_invalid_and_nothing_is_kept(
    client, tha_key, app_context, registered, secret
):
    broken = encoding(secret, "Srey Pov", "Chorn")
    broken["birthdate"] = base64.b64encode(b"short").decode()
    case_uuid = str(uuid.uuid4())
    assert deliver(client, tha_key, screening(case_uuid, broken)) == ["invalid"]
    assert deliver(client, tha_key, screening(case_uuid, "not a dict")) == ["invalid"]
    assert case_of(case_uuid) is None and persons() == 1


def test_a_tombstone_of_a_linked_copy_keeps_the_persons_own_values(
    client, tha_key, app_context, registered, secret
):
    case_uuid = str(uuid.uuid4())
    assert deliver(client, tha_key, screening(case_uuid, encoding(secret, "Srey Pov", "Chorn")))
    assert deliver(client, tha_key, tombstone(2, case_uuid=case_uuid)) == ["applied"]
    person = db.session.get(Person, registered.id)
    assert (person.first_name, person.gender, person.birthdate) == (
        "Sreypov",
        "Feminine",
        BIRTHDATE,
    )
    assert db.session.get(PersonLinkage, registered.id).source == "local"


def test_a_changed_person_is_encoded_again_before_matching(app_context, registered, secret):
    linkage = current_linkage()
    assert refresh_encodings(linkage) == 1
    assert refresh_encodings(linkage) == 0, "encoded once, not on every match"
    before = db.session.get(PersonLinkage, registered.id).encoding
    registered.second_name = "Chhun"
    db.session.commit()
    assert registered.needs_linkage is True
    assert refresh_encodings(linkage) == 1
    assert db.session.get(PersonLinkage, registered.id).encoding != before


def test_the_home_locality_is_kept_as_a_token_and_links_without_a_birth_date(
    app_context, registered, secret
):
    """KHM noted Sreypov's home village; THA has only her birth year and a typo."""
    registered.mailing_city = "Kampong Cham"
    registered.mailing_state = "Kampong Cham Province"
    db.session.commit()
    linkage = current_linkage()
    refresh_encodings(linkage)
    kept = db.session.get(PersonLinkage, registered.id).encoding
    assert kept["city"] and kept["city_state"] and "kampong" not in json.dumps(kept).casefold()
    incoming = PersonValues(
        ref="THA-1",
        first_name="Sreypov",
        second_name="Chhorm",
        birth_year=BIRTHDATE.year,
        mailing_city="KAMPONG CHAM",
    )
    [found] = find_matches(Encoder(secret).encode(incoming), linkage)
    assert (found.local, found.status, found.reason) == (str(registered.id), "certain", "home")


def test_a_rare_name_is_counted_in_the_database_as_in_memory(app_context, make, registered, secret):
    """THA has only Sreypov's birth year, and a typo: she is the only one of her name here,
    so certain; once two more of other years are registered (read by the name-pair key,
    whatever their year), only possible."""
    linkage = current_linkage()
    values = PersonValues(
        ref="THA-1", first_name="Sreypov", second_name="Chhorm", birth_year=BIRTHDATE.year
    )
    incoming = Encoder(secret).encode(values)
    [found] = find_matches(incoming, linkage)
    assert (found.local, found.status, found.reason) == (str(registered.id), "certain", "rare name")
    project = make.project()
    for year in (1960, 1970):
        person = Person(
            uuid=str(uuid.uuid4()), first_name="Sreypov", second_name="Chhorn", birth_year=year
        )
        db.session.add(
            Case(uuid=str(uuid.uuid4()), project_id=project.id, person=person, owner_mission="KHM")
        )
    db.session.commit()
    matches = find_matches(incoming, linkage)
    assert [(m.local, m.status) for m in matches] == [(str(registered.id), "possible")]


# ---- the sending end -------------------------------------------------------------------


def test_thas_upsert_carries_the_encoding_and_no_name_when_names_are_not_allowed(
    app_context, make, secret, caplog
):
    caplog.set_level(logging.DEBUG)
    project = make.project()
    person = Person(
        uuid=str(uuid.uuid4()),
        first_name="Srey Pov",
        second_name="Chorn",
        birthdate=BIRTHDATE,
        gender="Feminine",
        citizenship=["KHM"],
        identity_number="N1234567",
    )
    case = Case(
        uuid=str(uuid.uuid4()),
        project_id=project.id,
        person=person,
        owner_mission="THA",
        version=1,
        consents=[Consent(uuid=str(uuid.uuid4()), given=True, sharing=True)],
    )
    version = CaseVersion(case=case, version=1, changes={}, conflicts=[])
    db.session.add_all([case, version])
    db.session.flush()
    registry = Registry(
        {
            "THA": mission("THA", new_key()),
            "KHM": mission("KHM", new_key(), fields=["prs_Gender", "prs_Citizenship"]),
        }
    )
    [row] = record_case_change(db.session, case, version, registry=registry, own_mission="THA")
    db.session.commit()

    payload = db.session.scalar(select(SyncOutbox.payload).where(SyncOutbox.id == row.id))
    assert payload["linkage"]["ref"] == case.uuid
    document = {k: payload["linkage"][k] for k in ("document", "document_edits")}
    assert payload["linkage"] == encoding(secret, "Srey Pov", "Chorn", ref=case.uuid) | document
    assert payload["linkage"]["document"] is not None, "a keyed token of the document number"
    assert len(payload["linkage"]["document_edits"]) == 17, "and of it less each character"
    text = json.dumps(payload)
    for value in ("Srey", "Chorn", "N1234567", "1990-07-15"):
        assert value not in text
    secret_text = base64.b64encode(secret).decode()
    assert secret_text not in text and secret.hex() not in text
    assert secret_text not in caplog.text and "Chorn" not in caplog.text
