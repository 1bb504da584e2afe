"""Three missions, each a real deployment on a loopback port: THA (the destination) and
KHM and MMR (sources). Each has its own database (SQLite file, or a database of its own
in the test PostgreSQL server), its own Redis database number, instance folder, Ed25519
key and registry, and runs the Procfile's processes: `web` (gunicorn), `worker` and
`sync`. The three share one linkage secret. Phones post through the real OpenRosa
endpoint with app-user tokens made through the real API. Scenarios 1 to 7 of issue 5
(4: a person KHM registered years before is linked, not duplicated, and re-trafficked; a
possible match goes to KHM's review queue; 7: concurrent edits at THA and KHM while their
sync processes are stopped merge field by field, and a concurrent status change waits in
THA's review queue, whose decision reaches KHM).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from flask import Flask
from redis import Redis
from sqlalchemy import create_engine, func, select, text

from bench.nodes import Deployment, wait_until
from server import create_app
from server.auth.models import User
from server.auth.operations import create_user
from server.cases.models import Case, Consent, Person
from server.cases.queries import is_retrafficked
from server.extensions import db
from server.submissions.models import Submission
from sync import review, transfers
from sync.linkage_secret import new_secret
from sync.models import (
    SyncAppliedVersion,
    SyncInboxChange,
    SyncOutbox,
    SyncReview,
    SyncTransfer,
)
from sync.registry import Registry
from sync.signing import canonical_json, new_batch, sign_batch
from tests.cases_support import SCREENING_MD, screening_xml
from tests.conftest import DATABASE_KIND
from tests.factories import PASSWORD, Factories, multipart
from tests.sync_support import mission, new_key

CODES = ("THA", "KHM", "MMR")
#: What each mission may send each other one (default deny: unnamed fields stay home).
ALLOWED = {
    ("THA", "KHM"): (
        "cas_Reference",
        "cas_Status",
        "cas_ReintegrationStatus",
        "prs_Gender",
        "prs_Birthdate",
        "prs_Citizenship",
        "vic_TraffickingStatus",
        "vic_TypeOfExploitation",
        "hte_Type",
        "hte_Country",
        "hte_Date",
    ),
    ("THA", "MMR"): ("prs_Gender", "hte_Country"),
    ("KHM", "THA"): (
        "cas_Status",
        "cas_ReintegrationStatus",
        "cas_FollowUpDate",
        "prs_NumberOfChildren",
    ),
    ("KHM", "MMR"): ("cas_ReintegrationStatus", "prs_Gender"),
}

REINTEGRATION_MD = """
| survey   |                   |               |               |                               |
|          | type              | name          | label         | save_to                       |
|          | select_one_from_file cases.csv | case | Case     |                               |
|          | text              | reintegration | Reintegration | cases#cas_ReintegrationStatus |
|          | date              | next_visit    | Next visit    | cases#cas_FollowUpDate        |
|          | text              | note          | Note          | cases#cco_CaseComment         |
| entities |                   |               |               |
|          | list_name         | label         | entity_id     |
|          | cases             |               | ${case}       |
| settings |                   |               |               |
|          | form_id           | version       | form_title    |
|          | mini_reintegration | 1            | Reintegration |
"""


STATUS_MD = """
| survey   |                   |               |               |                               |
|          | type              | name          | label         | save_to                       |
|          | select_one_from_file cases.csv | case | Case     |                               |
|          | select_one status | status        | Status        | cases#cas_Status              |
|          | text              | reintegration | Reintegration | cases#cas_ReintegrationStatus |
|          | date              | next_visit    | Next visit    | cases#cas_FollowUpDate        |
| choices  |                   |               |               |
|          | list_name         | name          | label         |
|          | status            | active        | Active        |
|          | status            | follow_up     | Follow up     |
|          | status            | closed        | Closed        |
| entities |                   |               |               |
|          | list_name         | label         | entity_id     |
|          | cases             |               | ${case}       |
| settings |                   |               |               |
|          | form_id           | version       | form_title    |
|          | mini_status       | 1             | Status        |
"""


def status_xml(
    case_uuid: str, base_version: int, status: str, reintegration: str, next_visit: str = ""
) -> bytes:
    return (
        '<?xml version="1.0"?><data id="mini_status" version="1">'
        f"<case>{case_uuid}</case><status>{status}</status>"
        f"<reintegration>{reintegration}</reintegration><next_visit>{next_visit}</next_visit>"
        f'<meta><entity dataset="cases" update="1" id="{case_uuid}" '
        f'baseVersion="{base_version}"/><instanceID>uuid:{uuid.uuid4()}</instanceID></meta>'
        "</data>"
    ).encode()


def reintegration_xml(case_uuid: str, base_version: int) -> bytes:
    return (
        '<?xml version="1.0"?><data id="mini_reintegration" version="1">'
        f"<case>{case_uuid}</case><reintegration>Reintegrated</reintegration>"
        "<next_visit>2026-12-15</next_visit><note>Met her mother Srey at home</note>"
        f'<meta><entity dataset="cases" update="1" id="{case_uuid}" '
        f'baseVersion="{base_version}"/><instanceID>uuid:{uuid.uuid4()}</instanceID></meta>'
        "</data>"
    ).encode()


#: Quick sync ticks and retries: the scenarios wait for deliveries, not for production pacing.
FAST_SYNC = {
    "CASEBRIDGE_SYNC_POLL_SECONDS": "0.3",
    "CASEBRIDGE_SYNC_RETRY_BASE_SECONDS": "1",
    "CASEBRIDGE_SYNC_RETRY_MAX_SECONDS": "2",
}


class Node(Deployment):
    """One mission's deployment (bench.nodes), and its database read from here."""

    def __init__(self, code: str, folder: Path, database_url: str, redis_url: str):
        super().__init__(code, folder, database_url, redis_url, extra_env=FAST_SYNC)
        self.app: Flask | None = None

    def set_up(self, registry: Registry, linkage_secret: bytes) -> None:
        """Schema, an admin, the forms; the registry and keys the processes will read."""
        self.write_identity(registry, linkage_secret)
        self.app = create_app("testing", self.settings())
        with self.app.app_context():
            from flask_migrate import upgrade

            upgrade()
            make = Factories()
            project = make.project()
            make.form(SCREENING_MD, project=project)
            make.form(REINTEGRATION_MD, project=project)
            make.form(STATUS_MD, project=project)
            create_user("admin", "admin", PASSWORD)
            db.session.commit()
            db.session.remove()

    def read(self, query: Callable[[], object]) -> object:
        """Run `query` in this node's app, on a fresh transaction."""
        with self.app.app_context():
            try:
                return query()
            finally:
                db.session.remove()

    def phone(self) -> str:
        """An app user made through the real API, given every form; its token."""
        session = requests.post(
            f"{self.url}/v1/sessions", json={"email": "admin", "password": PASSWORD}, timeout=10
        ).json()["token"]
        auth = {"Authorization": f"Bearer {session}"}
        made = requests.post(
            f"{self.url}/v1/projects/1/app-users",
            json={"displayName": "Phone"},
            headers=auth,
            timeout=10,
        ).json()
        for form_id in ("mini_screening", "mini_reintegration", "mini_status"):
            response = requests.post(
                f"{self.url}/v1/projects/1/forms/{form_id}/assignments/app-user/{made['id']}",
                headers=auth,
                timeout=10,
            )
            assert response.status_code == 200, response.text
        return made["token"]

    def submit(self, token: str, xml: bytes) -> None:
        files = {k: (v[1], v[0], *v[2:]) for k, v in multipart(xml).items()}
        response = requests.post(
            f"{self.url}/v1/key/{token}/projects/1/submission",
            files=files,
            headers={"X-OpenRosa-Version": "1.0"},
            timeout=10,
        )
        assert response.status_code == 201, response.text

    def case(self, case_uuid: str) -> dict | None:
        """The case as plain values (or None), with its person, events, versions, consent."""

        def query():
            case = db.session.scalar(select(Case).where(Case.uuid == case_uuid))
            if case is None:
                return None
            person = case.person
            return {
                "owner": case.owner_mission,
                "person": person.id,
                "retrafficked": is_retrafficked(case),
                "version": case.version,
                "reference": case.reference,
                "status": case.status,
                "reintegration": case.reintegration_status,
                "follow_up": case.follow_up_date and case.follow_up_date.isoformat(),
                "comment": case.last_comment,
                "children": person.number_of_children,
                "names": (person.first_name, person.second_name),
                "gender": person.gender,
                "birthdate": person.birthdate and person.birthdate.isoformat(),
                "citizenship": person.citizenship,
                "trafficking_status": case.victim and case.victim.trafficking_status,
                "events": sorted((e.type, e.country, str(e.date)) for e in case.movement_events),
                "versions": [(v.version, v.submission_id, v.sync_change_id) for v in case.versions],
                "consent": case.consent
                and (case.consent.recipient_missions, case.consent.withdrawn),
            }

        return self.read(query)

    def inbox(self, case_uuid: str) -> list[tuple[str, str, int]]:
        return self.read(
            lambda: db.session.execute(
                select(
                    SyncInboxChange.origin_mission, SyncInboxChange.kind, SyncInboxChange.version
                )
                .where(SyncInboxChange.case_uuid == case_uuid)
                .order_by(SyncInboxChange.id)
            ).all()
        )

    def outbox(self, case_uuid: str) -> list[tuple[str, str, int, str, int]]:
        return self.read(
            lambda: [
                tuple(row)
                for row in db.session.execute(
                    select(
                        SyncOutbox.recipient_mission,
                        SyncOutbox.kind,
                        SyncOutbox.version,
                        SyncOutbox.state,
                        SyncOutbox.attempts,
                    )
                    .where(SyncOutbox.case_uuid == case_uuid)
                    .order_by(SyncOutbox.id)
                )
            ]
        )

    def logs(self) -> str:
        """The processes' logs, then the last sync rows here (ids, kinds, versions, states:
        no personal data): what a timed-out wait needs to tell where a change stopped."""
        if self.app is None:
            return super().logs()

        def trail() -> list[str]:
            outbox = db.session.execute(
                select(
                    SyncOutbox.case_uuid,
                    SyncOutbox.recipient_mission,
                    SyncOutbox.kind,
                    SyncOutbox.version,
                    SyncOutbox.state,
                    SyncOutbox.attempts,
                    SyncOutbox.last_error,
                )
                .order_by(SyncOutbox.id.desc())
                .limit(12)
            ).all()
            inbox = db.session.execute(
                select(
                    SyncInboxChange.case_uuid,
                    SyncInboxChange.origin_mission,
                    SyncInboxChange.kind,
                    SyncInboxChange.version,
                )
                .order_by(SyncInboxChange.id.desc())
                .limit(12)
            ).all()
            applied = db.session.execute(
                select(
                    SyncAppliedVersion.case_uuid,
                    SyncAppliedVersion.origin_mission,
                    SyncAppliedVersion.version,
                )
            ).all()
            cases = db.session.execute(select(Case.uuid, Case.owner_mission, Case.version)).all()
            return [
                f"--- {self.code} outbox, newest first: {[tuple(r) for r in outbox]}",
                f"--- {self.code} inbox, newest first: {[tuple(r) for r in inbox]}",
                f"--- {self.code} applied versions: {[tuple(r) for r in applied]}",
                f"--- {self.code} cases (uuid, owner, version): {[tuple(r) for r in cases]}",
            ]

        try:
            rows = self.read(trail)
        except Exception as error:  # noqa: BLE001 - a diagnostic must not hide the failure
            rows = [f"--- {self.code} sync rows unreadable: {error!r}"]
        return "\n".join([super().logs(), *rows])

    def submission_states(self) -> set[str]:
        return set(self.read(lambda: db.session.scalars(select(Submission.state)).all()))

    def close(self) -> None:
        self.stop()
        if self.app is not None:
            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()


@contextlib.contextmanager
def node_databases(database_url: str, folder: Path):
    """A database URL per mission: SQLite files, or databases in the test PostgreSQL."""
    if DATABASE_KIND == "sqlite":
        yield {code: f"sqlite:///{folder / f'{code.lower()}.sqlite3'}" for code in CODES}
        return
    admin = create_engine(
        database_url.replace("/casebridge_test?", "/postgres?"), isolation_level="AUTOCOMMIT"
    )
    names = {code: f"node_{code.lower()}_{uuid.uuid4().hex[:8]}" for code in CODES}
    with admin.connect() as connection:
        for name in names.values():
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield {
            code: database_url.replace("/casebridge_test?", f"/{name}?")
            for code, name in names.items()
        }
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def nodes(database_url, redis_url, tmp_path_factory):
    """THA, KHM and MMR, set up and running, each knowing the other two."""
    folder = tmp_path_factory.mktemp("missions")
    with node_databases(database_url, folder) as databases:
        made = {
            code: Node(code, folder / code.lower(), databases[code], f"{redis_url}?db={i + 1}")
            for i, code in enumerate(CODES)
        }
        linkage_secret = new_secret()  # one group: the three may compare persons
        try:
            for node in made.values():
                registry = Registry(
                    {
                        other.code: mission(
                            other.code,
                            other.key,
                            fields=ALLOWED.get((node.code, other.code), ()),
                            url=other.url,
                        )
                        for other in made.values()
                    }
                )
                node.set_up(registry, linkage_secret)
                node.start()
            for node in made.values():
                node.wait_until_serving()
            yield made
        finally:
            stopping = [threading.Thread(target=node.close) for node in made.values()]
            for thread in stopping:
                thread.start()
            for thread in stopping:
                thread.join()
            for node in made.values():
                Redis.from_url(node.redis_url).flushdb()


@pytest.fixture(scope="module")
def phones(nodes) -> dict[str, str]:
    return {code: node.phone() for code, node in nodes.items()}


def name_recipients(node: Node, case_uuid: str, missions: list[str]) -> None:
    """A consent statement naming `missions` added at `node` (the test screening form
    cannot name recipients)."""

    def add() -> None:
        case = db.session.scalar(select(Case).where(Case.uuid == case_uuid))
        case.consents.append(
            Consent(
                uuid=str(uuid.uuid4()),
                given=True,
                sharing=True,
                purposes=[],
                recipient_missions=missions,
                withdrawn=False,
            )
        )
        db.session.commit()

    node.read(add)


def arrived(node: Node, case_uuid: str, version: int = 1):
    """The case at `node` once it holds `version` of it (or later)."""

    def check():
        case = node.case(case_uuid)
        return case if case is not None and case["version"] >= version else None

    return check


def test_a_consented_screening_at_tha_reaches_khm_with_the_allowed_fields_only(nodes, phones):
    tha, khm, mmr = nodes["THA"], nodes["KHM"], nodes["MMR"]
    xml, _, case_uuid = screening_xml(first="Sokha", citizenship="KHM")
    tha.submit(phones["THA"], xml)

    copy = wait_until(arrived(khm, case_uuid), 30, "the case at KHM", tha, khm)
    assert copy["owner"] == "THA"
    assert copy["names"] == (None, None) and copy["children"] is None  # not allowed
    assert (copy["gender"], copy["birthdate"], copy["citizenship"]) == (
        "Feminine",
        "1995-04-02",
        ["KHM"],
    )
    assert copy["trafficking_status"] == "ActualVictimOfTrafficking"
    assert copy["reference"] == f"CB-{case_uuid[:8]}"
    assert copy["events"] == [
        ("Exploitation", "THA", "2024-02-01"),
        ("Recruitment", "KHM", "2024-01-10"),
    ]
    [(version, submission_id, change_id)] = copy["versions"]
    assert version == 1 and submission_id is None and change_id
    assert copy["consent"] == (["THA"], False)  # may go back to its owner only
    assert khm.inbox(case_uuid) == [("THA", "upsert", 1)]
    assert tha.outbox(case_uuid) == [("KHM", "upsert", 1, "acked", 0)]
    assert mmr.case(case_uuid) is None, "MMR serves neither country of the case"
    for node in nodes.values():
        assert "Sokha" not in node.logs(), f"a name in {node.code}'s logs"


def test_without_consent_nothing_personal_reaches_khm(nodes, phones):
    tha, khm = nodes["THA"], nodes["KHM"]
    refused, _, refused_uuid = screening_xml(consent="false")
    not_shared, _, not_shared_uuid = screening_xml()
    not_shared = not_shared.replace(b"<share>true</share>", b"<share>false</share>")
    shared, _, shared_uuid = screening_xml()
    for xml in (refused, not_shared, shared):  # the outbox keeps their order
        tha.submit(phones["THA"], xml)

    wait_until(arrived(khm, shared_uuid), 30, "the consented case at KHM", tha, khm)
    assert tha.case(refused_uuid) is None, "consent refused: no case at all"
    assert tha.case(not_shared_uuid)["owner"] == "THA"
    assert tha.outbox(not_shared_uuid) == [], "no consent to share: not even a notice"
    for case_uuid in (refused_uuid, not_shared_uuid):
        assert khm.case(case_uuid) is None and khm.inbox(case_uuid) == []


def test_a_reintegration_update_at_khm_is_visible_at_tha(nodes, phones):
    tha, khm = nodes["THA"], nodes["KHM"]
    xml, _, case_uuid = screening_xml()
    tha.submit(phones["THA"], xml)
    wait_until(arrived(khm, case_uuid), 30, "the case at KHM", tha, khm)

    listed = requests.get(
        f"{khm.url}/v1/key/{phones['KHM']}/projects/1/forms/mini_reintegration/attachments/cases.csv",
        timeout=10,
    ).text
    assert f"{case_uuid},CB-{case_uuid[:8]},1" in listed.splitlines(), "KHM's phones see it"
    khm.submit(phones["KHM"], reintegration_xml(case_uuid, base_version=1))
    updated = wait_until(arrived(tha, case_uuid, version=2), 30, "KHM's update at THA", tha, khm)
    assert (updated["reintegration"], updated["follow_up"]) == ("Reintegrated", "2026-12-15")
    assert updated["comment"] is None, "a note is local-only: it stays at KHM"
    assert updated["names"] == ("Sokha", "Chan") and updated["children"] == 2, "THA's own kept"
    (_, first_submission, _), (_, no_submission, change_id) = updated["versions"]
    assert first_submission is not None and no_submission is None and change_id
    assert tha.inbox(case_uuid) == [("KHM", "upsert", 2)]
    # KHM records the ack after THA has answered: under load, a moment after THA shows it.
    wait_until(lambda: khm.outbox(case_uuid)[0][3] == "acked", 10, "the ack at KHM", khm)
    assert khm.outbox(case_uuid) == [("THA", "upsert", 2, "acked", 0)]

    at_khm = khm.case(case_uuid)
    assert (at_khm["reintegration"], at_khm["comment"]) == (
        "Reintegrated",
        "Met her mother Srey at home",
    )
    # THA routes its new version as usual: KHM gets it, finds nothing new, and stops there.
    wait_until(lambda: len(khm.inbox(case_uuid)) == 2, 30, "THA's version 2 at KHM", tha, khm)
    time.sleep(1)  # a few sync ticks: nothing more travels
    assert [row[:3] for row in tha.outbox(case_uuid)] == [
        ("KHM", "upsert", 1),
        ("KHM", "upsert", 2),
    ]
    assert khm.case(case_uuid)["version"] == 2
    assert len(khm.outbox(case_uuid)) == 1
    assert "Srey" not in repr(
        tha.read(lambda: db.session.scalars(select(SyncInboxChange.payload)).all())
    )


def test_khm_down_for_a_while_gets_the_case_once_it_returns(nodes, phones):
    tha, khm = nodes["THA"], nodes["KHM"]
    khm.stop("web")
    try:
        xml, _, case_uuid = screening_xml()
        tha.submit(phones["THA"], xml)
        wait_until(
            lambda: any(row[4] >= 1 for row in tha.outbox(case_uuid)),
            30,
            "a failed delivery attempt while KHM is down",
            tha,
        )
        [(_, _, _, state, _)] = tha.outbox(case_uuid)
        assert state == "pending"
        assert khm.case(case_uuid) is None
    finally:
        khm.start("web")
    khm.wait_until_serving()
    wait_until(arrived(khm, case_uuid), 30, "the case at KHM after it returned", tha, khm)
    wait_until(lambda: tha.outbox(case_uuid)[0][3] == "acked", 10, "the ack at THA", tha)
    time.sleep(1)
    assert khm.inbox(case_uuid) == [("THA", "upsert", 1)], "delivered once"
    assert len(khm.case(case_uuid)["versions"]) == 1


def test_a_person_khm_registered_years_before_is_linked_not_duplicated(nodes, phones):
    """Scenario 4: KHM screened Sreypov Chhorn in 2019 (kept at KHM); THA now screens
    "Srey Pov Chorn", same birth date. Only the encoding travels, not the names; at KHM
    the copy is her case, re-trafficking shows, and no second person is made."""
    tha, khm = nodes["THA"], nodes["KHM"]
    earlier, _, earlier_uuid = screening_xml(
        first="Sreypov",
        family="Chhorn",
        birthdate="1990-07-15",
        share="false",
        events=(("exploitation", "KHM", "2019-05-01"),),
    )
    khm.submit(phones["KHM"], earlier)
    registered = wait_until(arrived(khm, earlier_uuid), 30, "KHM's own case", khm)
    assert not registered["retrafficked"]
    persons_before = khm.read(lambda: db.session.scalar(select(func.count(Person.id))))

    xml, _, case_uuid = screening_xml(first="Srey Pov", family="Chorn", birthdate="1990-07-15")
    tha.submit(phones["THA"], xml)
    copy = wait_until(arrived(khm, case_uuid), 30, "THA's case at KHM", tha, khm)
    assert copy["person"] == registered["person"], "linked to the person KHM has"
    assert copy["retrafficked"] and khm.case(earlier_uuid)["retrafficked"]
    assert copy["names"] == ("Sreypov", "Chhorn"), "KHM's own spelling stays"
    assert khm.read(lambda: db.session.scalar(select(func.count(Person.id)))) == persons_before
    [payload] = khm.read(
        lambda: db.session.scalars(
            select(SyncInboxChange.payload).where(SyncInboxChange.case_uuid == case_uuid)
        ).all()
    )
    assert payload["linkage"]["ref"] == case_uuid
    assert "Srey" not in repr(payload) and "Chorn" not in repr(payload), "names stay at THA"

    # The same name with no birth date to compare: possible only, KHM's review queue.
    unsure, _, unsure_uuid = screening_xml(first="Sreypov", family="Chhorn", birthdate="")
    tha.submit(phones["THA"], unsure)
    other = wait_until(arrived(khm, unsure_uuid), 30, "the undated case at KHM", tha, khm)
    assert other["person"] != registered["person"]
    reviews = khm.read(
        lambda: [
            (r.kind, r.state, [c["person_id"] for c in r.candidates])
            for r in db.session.scalars(
                select(SyncReview).where(SyncReview.case_uuid == unsure_uuid)
            )
        ]
    )
    assert reviews == [("possible_duplicate", "open", [registered["person"]])]
    secret = (khm.folder / "linkage.key").read_text().strip()
    sent = repr(tha.read(lambda: db.session.scalars(select(SyncOutbox.payload)).all()))
    assert secret not in sent
    for node in nodes.values():
        logs = node.logs()
        assert "Sreypov" not in logs and "Chorn" not in logs and secret not in logs


def post_envelope(node: Node, envelope: dict | bytes) -> requests.Response:
    body = envelope if isinstance(envelope, bytes) else canonical_json(envelope)
    return requests.post(
        f"{node.url}/sync/v1/inbox",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )


def test_tampered_replayed_unsigned_or_unknown_batches_are_refused_by_a_running_node(nodes):
    tha, khm = nodes["THA"], nodes["KHM"]

    def upsert() -> dict:
        case_uuid = str(uuid.uuid4())
        return {
            "change_id": str(uuid.uuid4()),
            "case_uuid": case_uuid,
            "origin_mission": "THA",
            "version": 1,
            "kind": "upsert",
            "payload": {
                "case": {"owner_mission": "THA", "fields": {"prs_Gender": "Feminine"}},
                "consent": {"purposes": []},
                "records": [],
            },
        }

    tampered = sign_batch(new_batch("THA", "KHM", [upsert()]), tha.key)
    tampered["batch"]["changes"][0]["payload"]["case"]["fields"]["prs_Gender"] = "Masculine"
    unsigned = {"batch": new_batch("THA", "KHM", [upsert()])}
    stranger = sign_batch(
        new_batch("LAO", "KHM", [upsert() | {"origin_mission": "LAO"}]), new_key()
    )
    impostor = sign_batch(new_batch("THA", "KHM", [upsert()]), new_key())  # THA's name, not key
    refusals = [
        (tampered, 401, "bad_signature"),
        (unsigned, 401, "unsigned"),
        (stranger, 403, "unknown_sender"),
        (impostor, 401, "bad_signature"),
    ]
    for envelope, status, code in refusals:
        response = post_envelope(khm, envelope)
        assert (response.status_code, response.json()["error"]) == (status, code)
        case_uuid = envelope["batch"]["changes"][0]["case_uuid"]
        assert khm.case(case_uuid) is None and khm.inbox(case_uuid) == []

    genuine = sign_batch(new_batch("THA", "KHM", [upsert()]), tha.key)
    case_uuid = genuine["batch"]["changes"][0]["case_uuid"]
    assert post_envelope(khm, genuine).status_code == 200
    replay = post_envelope(khm, genuine)
    assert (replay.status_code, replay.json()["error"]) == (409, "replayed")
    assert khm.inbox(case_uuid) == [("THA", "upsert", 1)]
    assert len(khm.case(case_uuid)["versions"]) == 1


def test_concurrent_edits_at_both_ends_merge_and_a_status_conflict_goes_to_review(nodes, phones):
    """Scenario 7: THA and KHM both edit THA's case while neither can send (their sync
    processes stopped). Then: the reintegration status both wrote is the same at both
    ends (the later clock), KHM's next visit reaches THA, and neither status is
    overwritten: THA's review queue holds the conflict, and THA's decision reaches KHM."""
    tha, khm = nodes["THA"], nodes["KHM"]
    xml, _, case_uuid = screening_xml()
    tha.submit(phones["THA"], xml)
    wait_until(arrived(khm, case_uuid), 30, "the case at KHM", tha, khm)
    wait_until(lambda: tha.outbox(case_uuid)[0][3] == "acked", 10, "the ack at THA", tha)

    with delivery_by_poll_only(tha, khm):
        edit_while_neither_can_send(tha, khm, phones, case_uuid)

    def caught_up() -> bool:
        return all(
            row[3] == "acked" for node in (tha, khm) for row in node.outbox(case_uuid)
        ) and any(origin == "KHM" for origin, _, _ in tha.inbox(case_uuid))

    wait_until(caught_up, 60, "both ends caught up", tha, khm)
    at_tha, at_khm = tha.case(case_uuid), khm.case(case_uuid)
    assert at_tha["reintegration"] == at_khm["reintegration"] in ("In shelter", "Home")
    assert at_tha["follow_up"] == "2026-12-20", "written at KHM only: taken at THA"
    assert (at_tha["status"], at_khm["status"]) == ("Closed", "FollowUp"), "no silent overwrite"

    def conflicts(node: Node) -> list:
        return node.read(
            lambda: [
                (r.kind, r.state, r.reason, r.id)
                for r in db.session.scalars(
                    select(SyncReview).where(SyncReview.case_uuid == case_uuid)
                )
            ]
        )

    [(kind, state, reason, review_id)] = conflicts(tha)
    assert (kind, state) == ("conflict", "open")
    assert reason.startswith("cas_Status: THA ") and " / KHM " in reason
    assert "Closed" not in reason and "FollowUp" not in reason
    assert conflicts(khm) == [], "the owner decides"

    def reject() -> None:
        admin = db.session.scalar(select(User).where(User.name == "admin"))
        review.reject(review_id, admin)
        db.session.commit()

    tha.read(reject)  # THA keeps "Closed": the decision travels to KHM
    wait_until(
        lambda: khm.case(case_uuid)["status"] == "Closed", 30, "THA's decision at KHM", tha, khm
    )
    assert tha.case(case_uuid)["status"] == "Closed"
    assert khm.case(case_uuid)["reintegration"] == tha.case(case_uuid)["reintegration"]


@contextlib.contextmanager
def delivery_by_poll_only(*nodes: Node):
    """Workers restarted with SYNC_DELIVER_ON_COMMIT off: only the sync processes send,
    so stopping them stops sending (a commit would otherwise queue a delivery at once)."""
    for node in nodes:
        node.stop("worker")
        node.extra_env["CASEBRIDGE_SYNC_DELIVER_ON_COMMIT"] = "false"
        node.start("worker")
    try:
        yield
    finally:
        for node in nodes:
            node.stop("worker")
            del node.extra_env["CASEBRIDGE_SYNC_DELIVER_ON_COMMIT"]
            node.start("worker")


def edit_while_neither_can_send(tha: Node, khm: Node, phones, case_uuid: str) -> None:
    tha.stop("sync")
    khm.stop("sync")
    try:
        tha.submit(phones["THA"], status_xml(case_uuid, 1, "closed", "In shelter"))
        khm.submit(phones["KHM"], status_xml(case_uuid, 1, "follow_up", "Home", "2026-12-20"))
        wait_until(arrived(tha, case_uuid, 2), 30, "THA's edit", tha)
        wait_until(arrived(khm, case_uuid, 2), 30, "KHM's edit", khm)
        assert tha.inbox(case_uuid) == [] and len(khm.inbox(case_uuid)) == 1, "not yet sent"
    finally:
        tha.start("sync")
        khm.start("sync")


# ---- transfers and referrals (issue 5 "Ownership") ------------------------------------


def thai_case(tha: Node, phones, first: str) -> str:
    """A case of THA's about a Thai citizen exploited in Thailand: linked to no other
    mission, so nothing routes; her consent (a later statement) names KHM and MMR."""
    xml, _, case_uuid = screening_xml(
        first=first,
        family="Srisuk",
        citizenship="THA",
        events=(("exploitation", "THA", "2024-02-01"),),
    )
    tha.submit(phones["THA"], xml)
    wait_until(arrived(tha, case_uuid), 30, "THA's case", tha)

    name_recipients(tha, case_uuid, ["KHM", "MMR"])
    assert tha.outbox(case_uuid) == [], "linked to no mission: nothing travels"
    return case_uuid


def ask(node: Node, case_uuid: str, kind: str, to: str) -> str:
    """The node's admin asks `to` to take or share the case; the transfer's uuid."""

    def query() -> str:
        case = db.session.scalar(select(Case).where(Case.uuid == case_uuid))
        made = transfers.request(case, kind, to, _admin(), "services")
        db.session.commit()
        return made.uuid

    return node.read(query)


def _admin() -> User:
    return db.session.scalar(select(User).where(User.name == "admin"))


def open_item(node: Node, case_uuid: str):
    """The open review item for the case at `node`, as (id, kind, candidates), once there."""

    def check():
        return node.read(
            lambda: next(
                (
                    (r.id, r.kind, r.candidates, r.details)
                    for r in db.session.scalars(
                        select(SyncReview).where(
                            SyncReview.case_uuid == case_uuid, SyncReview.state == "open"
                        )
                    )
                ),
                None,
            )
        )

    return check


def decide(node: Node, review_id: int, accept: bool) -> None:
    def query() -> None:
        if accept:
            review.accept(review_id, _admin())
        else:
            review.reject(review_id, _admin())
        db.session.commit()

    node.read(query)


def transfer_states(node: Node, case_uuid: str) -> list[tuple[str, str, str]]:
    return node.read(
        lambda: db.session.execute(
            select(SyncTransfer.kind, SyncTransfer.to_mission, SyncTransfer.state)
            .where(SyncTransfer.case_uuid == case_uuid)
            .order_by(SyncTransfer.id)
        ).all()
    )


def test_a_transfer_moves_ownership_only_when_khm_accepts(nodes, phones):
    """THA transfers a case to KHM: KHM's queue holds it with the encoding only; accepted,
    KHM owns the case and THA's copy says so; THA's follow-up goes to KHM as a copy's."""
    tha, khm = nodes["THA"], nodes["KHM"]
    case_uuid = thai_case(tha, phones, "Malai")
    transfer_uuid = ask(tha, case_uuid, "transfer", "KHM")

    review_id, kind, candidates, details = wait_until(
        open_item(khm, case_uuid), 30, "the request in KHM's queue", tha, khm
    )
    assert (kind, candidates, details["transfer"]) == ("transfer", [], transfer_uuid)
    assert khm.case(case_uuid) is None, "no case fields before acceptance"
    [payload] = khm.read(
        lambda: db.session.scalars(
            select(SyncInboxChange.payload).where(SyncInboxChange.case_uuid == case_uuid)
        ).all()
    )
    assert set(payload) == {"transfer", "kind", "reason", "linkage"}
    assert "Malai" not in repr(payload) and "Srisuk" not in repr(payload)
    assert tha.case(case_uuid)["owner"] == "THA"

    decide(khm, review_id, accept=True)
    owned = wait_until(
        lambda: (c := khm.case(case_uuid)) is not None and c["owner"] == "KHM" and c,
        30,
        "the case owned at KHM",
        tha,
        khm,
    )
    assert owned["gender"] == "Feminine" and owned["citizenship"] == ["THA"], "allowed fields"
    assert owned["names"] == (None, None) and owned["children"] is None, "not allowed"
    assert owned["consent"] == (["KHM", "MMR"], False), "the consent statement in force"
    at_tha = tha.case(case_uuid)
    assert at_tha["owner"] == "KHM" and at_tha["names"] == ("Malai", "Srisuk"), "THA's copy"
    assert transfer_states(tha, case_uuid) == [("transfer", "KHM", "accepted")]
    assert transfer_states(khm, case_uuid) == [("transfer", "KHM", "accepted")]

    tha.submit(
        phones["THA"],
        status_xml(case_uuid, at_tha["version"], "active", "In shelter", "2026-12-24"),
    )
    followed = wait_until(
        lambda: (c := khm.case(case_uuid))["reintegration"] == "In shelter" and c,
        30,
        "THA's follow-up at KHM",
        tha,
        khm,
    )
    assert followed["owner"] == "KHM" and tha.case(case_uuid)["owner"] == "KHM"
    assert [row[:2] for row in tha.outbox(case_uuid)] == [
        ("KHM", "transfer_request"),
        ("KHM", "transfer_case"),
        ("KHM", "upsert"),
    ]
    for node in nodes.values():
        assert "Malai" not in node.logs() and "Srisuk" not in node.logs()


def test_a_referral_shares_the_allowed_fields_and_revoking_it_withdraws_the_copy(nodes, phones):
    tha, mmr = nodes["THA"], nodes["MMR"]
    case_uuid = thai_case(tha, phones, "Kanya")
    transfer_uuid = ask(tha, case_uuid, "referral", "MMR")
    review_id, kind, _, _ = wait_until(
        open_item(mmr, case_uuid), 30, "the referral in MMR's queue", tha, mmr
    )
    assert kind == "referral" and mmr.case(case_uuid) is None
    decide(mmr, review_id, accept=True)

    copy = wait_until(arrived(mmr, case_uuid), 30, "the referred case at MMR", tha, mmr)
    assert copy["owner"] == "THA" and tha.case(case_uuid)["owner"] == "THA", "THA still owns"
    assert copy["gender"] == "Feminine" and copy["events"] == [(None, "THA", "None")]
    assert copy["names"] == (None, None) and copy["birthdate"] is None, "not allowed to MMR"

    def revoke() -> None:
        transfers.revoke(transfers.by_uuid(transfer_uuid), _admin())
        db.session.commit()

    tha.read(revoke)
    withdrawn = wait_until(
        lambda: (c := mmr.case(case_uuid))["consent"] == ([], True) and c,
        30,
        "the copy withdrawn at MMR",
        tha,
        mmr,
    )
    assert withdrawn["gender"] is None and withdrawn["events"] == []
    assert [kind for _, kind, _ in mmr.inbox(case_uuid)][-1] == "tombstone"
    assert transfer_states(mmr, case_uuid) == [("referral", "MMR", "revoked")]
    assert (
        mmr.read(
            lambda: db.session.scalar(select(SyncReview.state).where(SyncReview.id == review_id))
        )
        == "revoked"
    )


def test_a_rejected_transfer_leaves_the_case_with_tha_and_nothing_at_khm(nodes, phones):
    tha, khm = nodes["THA"], nodes["KHM"]
    case_uuid = thai_case(tha, phones, "Ratana")
    ask(tha, case_uuid, "transfer", "KHM")
    review_id, _, _, _ = wait_until(open_item(khm, case_uuid), 30, "the request at KHM", tha, khm)
    decide(khm, review_id, accept=False)
    wait_until(
        lambda: transfer_states(tha, case_uuid) == [("transfer", "KHM", "rejected")],
        30,
        "the answer at THA",
        tha,
        khm,
    )
    assert tha.case(case_uuid)["owner"] == "THA"
    assert khm.case(case_uuid) is None
    assert [kind for _, kind, _ in khm.inbox(case_uuid)] == ["transfer_request"]
    assert [row[1] for row in tha.outbox(case_uuid)] == ["transfer_request"]


def test_after_a_transfer_mmrs_copy_follows_khm_and_thas_follow_up_leaves_it(nodes, phones):
    """THA's case about a Myanmar citizen is at MMR as a copy; THA transfers it to KHM,
    which accepts: MMR's copy then says KHM owns it, takes KHM's follow-up (its allowed
    fields), and THA's next follow-up, as a copy's, goes to KHM only (no tombstone)."""
    tha, khm, mmr = nodes["THA"], nodes["KHM"], nodes["MMR"]
    xml, _, case_uuid = screening_xml(
        first="Thida",
        family="Aung",
        citizenship="MMR",
        events=(("exploitation", "THA", "2024-02-01"),),
    )
    tha.submit(phones["THA"], xml)
    copy = wait_until(arrived(mmr, case_uuid), 30, "THA's case at MMR", tha, mmr)
    assert copy["owner"] == "THA" and copy["gender"] == "Feminine"

    name_recipients(tha, case_uuid, ["KHM", "MMR"])
    ask(tha, case_uuid, "transfer", "KHM")
    review_id, _, _, _ = wait_until(open_item(khm, case_uuid), 30, "the request at KHM", tha, khm)
    decide(khm, review_id, accept=True)

    followed = wait_until(
        lambda: (c := mmr.case(case_uuid))["owner"] == "KHM" and c,
        30,
        "MMR's copy owned by KHM",
        tha,
        khm,
        mmr,
    )
    assert followed["consent"] == (["KHM"], False), "MMR's follow-ups go to KHM now"
    assert followed["gender"] == "Feminine" and followed["names"] == (None, None)
    assert khm.case(case_uuid)["owner"] == "KHM"

    at_khm = wait_until(arrived(khm, case_uuid), 30, "the case at KHM", khm)
    khm.submit(
        phones["KHM"],
        status_xml(case_uuid, at_khm["version"], "follow_up", "With her family", "2026-12-20"),
    )
    reached = wait_until(
        lambda: (c := mmr.case(case_uuid))["reintegration"] == "With her family" and c,
        30,
        "KHM's follow-up at MMR",
        khm,
        mmr,
    )
    assert reached["owner"] == "KHM" and reached["follow_up"] is None, "allowed fields only"

    at_tha = tha.case(case_uuid)
    tha.submit(
        phones["THA"],
        status_xml(case_uuid, at_tha["version"], "active", "In shelter", "2026-12-24"),
    )
    wait_until(
        lambda: ("THA", "upsert") in [row[:2] for row in khm.inbox(case_uuid)],
        30,
        "THA's follow-up at KHM",
        tha,
        khm,
    )
    assert [row[:2] for row in tha.outbox(case_uuid) if row[0] == "MMR"] == [
        ("MMR", "upsert"),
        ("MMR", "upsert"),
    ], "the case, then who owns it now: no tombstone"
    assert "tombstone" not in [kind for _, kind, _ in mmr.inbox(case_uuid)]
    kept = mmr.case(case_uuid)
    assert (kept["owner"], kept["gender"], kept["consent"]) == ("KHM", "Feminine", (["KHM"], False))
    for node in nodes.values():
        assert "Thida" not in node.logs() and "Aung" not in node.logs()


def test_a_referral_follows_the_case_to_its_new_owner(nodes, phones):
    """THA's case (linked to no mission) is referred to MMR, then transferred to KHM: KHM
    takes the referral over, so its follow-up reaches MMR's copy and ending the referral
    withdraws that copy. Was: the referral stayed THA's; MMR's copy, following KHM, was
    never updated nor withdrawn."""
    tha, khm, mmr = nodes["THA"], nodes["KHM"], nodes["MMR"]
    case_uuid = thai_case(tha, phones, "Pranee")
    referral = ask(tha, case_uuid, "referral", "MMR")
    review_id, _, _, _ = wait_until(open_item(mmr, case_uuid), 30, "the referral", tha, mmr)
    decide(mmr, review_id, accept=True)
    wait_until(arrived(mmr, case_uuid), 30, "the referred case at MMR", tha, mmr)

    ask(tha, case_uuid, "transfer", "KHM")
    review_id, _, _, _ = wait_until(open_item(khm, case_uuid), 30, "the request at KHM", tha, khm)
    decide(khm, review_id, accept=True)
    wait_until(
        lambda: (c := mmr.case(case_uuid))["owner"] == "KHM" and c,
        30,
        "MMR's copy owned by KHM",
        tha,
        khm,
        mmr,
    )
    at_khm = wait_until(
        lambda: (c := khm.case(case_uuid)) is not None and c["owner"] == "KHM" and c,
        30,
        "the case owned at KHM",
        tha,
        khm,
    )
    assert ("referral", "MMR", "accepted") in transfer_states(khm, case_uuid)

    khm.submit(
        phones["KHM"],
        status_xml(case_uuid, at_khm["version"], "follow_up", "With her family", "2026-12-20"),
    )
    wait_until(
        lambda: mmr.case(case_uuid)["reintegration"] == "With her family",
        30,
        "KHM's follow-up at MMR",
        khm,
        mmr,
    )

    def end_referral() -> None:
        transfers.revoke(transfers.by_uuid(referral), _admin())
        db.session.commit()

    khm.read(end_referral)
    withdrawn = wait_until(
        lambda: (c := mmr.case(case_uuid))["consent"] == ([], True) and c,
        30,
        "the copy withdrawn at MMR",
        khm,
        mmr,
    )
    assert withdrawn["reintegration"] is None and withdrawn["gender"] is None
    assert transfer_states(mmr, case_uuid) == [("referral", "MMR", "revoked")]
    for node in nodes.values():
        assert "Pranee" not in node.logs() and "Srisuk" not in node.logs()
