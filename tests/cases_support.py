"""A small mapped screening form, its submissions, and posting them as a phone does."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from server.auth.models import User
from server.cases.models import Case, Episode
from server.extensions import db
from server.projects.models import Project
from sync.models import SyncInboxChange
from tests.factories import PASSWORD, app_user_with_forms, multipart

YEAR = dt.date.today().year

SCREENING_MD = """
| survey   |                   |             |              |                                     |
|          | type              | name        | label        | save_to                             | calculation |
|          | calculate         | ref         |              | cases#cas_Reference                 | concat('CB-', substr(once(uuid()), 0, 8)) |
|          | select_one bool   | consent     | Consent?     | cases#con_Consent                   |
|          | select_one bool   | share       | Share?       | cases#con_Sharing                   |
|          | text              | first       | First name   | cases#prs_FirstName                 |
|          | text              | family      | Family name  | cases#prs_SecondName                |
|          | select_one gender | gender      | Gender       | cases#prs_Gender                    |
|          | date              | birthdate   | Birth date   | cases#prs_Birthdate                 |
|          | select_multiple country | citizenship | Citizenship | cases#prs_Citizenship          |
|          | select_one status | tstatus     | Status       | cases#vic_TraffickingStatus         |
|          | select_multiple exploitation | exploitation | Exploitation | cases#vic_TypeOfExploitation |
|          | integer           | children    | Children     | cases#prs_NumberOfChildren          |
|          | begin_repeat      | event       | Places       |                                     |
|          | select_one event_type | etype   | Type         | movement_events#hte_Type            |
|          | select_one country | ecountry   | Country      | movement_events#hte_Country         |
|          | date              | edate       | Date         | movement_events#hte_Date            |
|          | end_repeat        |             |              |                                     |
| choices  |                   |             |              |
|          | list_name         | name        | label        |
|          | bool              | true        | Yes          |
|          | bool              | false       | No           |
|          | gender            | feminine    | Woman        |
|          | gender            | masculine   | Man          |
|          | country           | THA         | Thailand     |
|          | country           | KHM         | Cambodia     |
|          | country           | MMR         | Myanmar      |
|          | status            | possible_victim_of_trafficking | Possible |
|          | status            | actual_victim_of_trafficking   | Actual   |
|          | exploitation      | forced_labour        | Forced labour        |
|          | exploitation      | sexual_exploitation  | Sexual exploitation  |
|          | event_type        | recruitment  | Recruitment  |
|          | event_type        | transit      | Transit      |
|          | event_type        | exploitation | Exploitation |
| entities |                   |             |              |
|          | list_name         | label       | create_if    |
|          | cases             | ${ref}      | ${consent} = 'true' |
|          | movement_events   | ${etype}    |              |
| settings |                   |             |              |
|          | form_id           | version     | form_title   |
|          | mini_screening    | 1           | Screening    |
"""


def screening_xml(
    *,
    case_id: str | None = None,
    instance_id: str | None = None,
    consent: str = "true",
    first: str = "Sokha",
    family: str = "Chan",
    share: str = "true",
    gender: str = "feminine",
    birthdate: str = "1995-04-02",
    citizenship: str = "KHM",
    status: str = "actual_victim_of_trafficking",
    exploitation: str = "forced_labour",
    children: str = "2",
    events: tuple[tuple[str, str, str], ...] = (
        ("recruitment", "KHM", "2024-01-10"),
        ("exploitation", "THA", "2024-02-01"),
    ),
) -> tuple[bytes, str, str]:
    """A submission of SCREENING_MD as Collect would write it; returns (xml, instanceID, case uuid)."""
    instance_id = instance_id or f"uuid:{uuid.uuid4()}"
    case_id = case_id or str(uuid.uuid4())
    create = "1" if consent == "true" else "0"
    event_xml = "".join(
        f"<event><etype>{t}</etype><ecountry>{c}</ecountry><edate>{d}</edate>"
        f'<meta><entity dataset="movement_events" create="1" '
        f'id="{uuid.uuid5(uuid.NAMESPACE_URL, f"{case_id}/event/{i}")}">'
        f"<label>{t}</label></entity></meta></event>"
        for i, (t, c, d) in enumerate(events)
    )
    xml = (
        '<?xml version="1.0"?>'
        '<data xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
        'id="mini_screening" version="1">'
        f"<ref>CB-{case_id[:8]}</ref><consent>{consent}</consent><share>{share}</share>"
        f"<first>{first}</first><family>{family}</family><gender>{gender}</gender>"
        f"<birthdate>{birthdate}</birthdate><citizenship>{citizenship}</citizenship>"
        f"<tstatus>{status}</tstatus><exploitation>{exploitation}</exploitation>"
        f"<children>{children}</children>{event_xml}"
        f'<meta><entity dataset="cases" create="{create}" id="{case_id}">'
        f"<label>CB-{case_id[:8]}</label></entity>"
        f"<instanceID>{instance_id}</instanceID></meta></data>"
    )
    return xml.encode(), instance_id, case_id


FOLLOW_UP_MD = """
| survey   |                   |          |              |                          |
|          | type              | name     | label        | save_to                  |
|          | select_one_from_file cases.csv | case | Case |                  |
|          | select_one status | cstatus  | Case status  | cases#cas_Status         |
|          | integer           | children | Children     | cases#prs_NumberOfChildren |
| choices  |                   |          |              |
|          | list_name         | name     | label        |
|          | status            | active   | Active       |
|          | status            | closed   | Closed       |
| entities |                   |          |              |
|          | list_name         | label    | entity_id    |
|          | cases             |          | ${case}      |
| settings |                   |          |              |
|          | form_id           | version  | form_title   |
|          | mini_follow_up    | 1        | Follow-up    |
"""


def follow_up_xml(
    case_id: str, base_version: int, *, status: str = "closed", children: str = ""
) -> tuple[bytes, str]:
    instance_id = f"uuid:{uuid.uuid4()}"
    xml = (
        '<?xml version="1.0"?><data id="mini_follow_up" version="1">'
        f"<case>{case_id}</case><cstatus>{status}</cstatus><children>{children}</children>"
        f'<meta><entity dataset="cases" update="1" id="{case_id}" baseVersion="{base_version}"/>'
        f"<instanceID>{instance_id}</instanceID></meta></data>"
    )
    return xml.encode(), instance_id


def post(client, project_id: int, token: str, xml: bytes):
    return client.post(
        f"/v1/key/{token}/projects/{project_id}/submission",
        data=multipart(xml),
        headers={"X-OpenRosa-Version": "1.0"},
    )


def drain(runner) -> None:
    """Run the worker until the queue is empty, as `casebridge worker --burst` does."""
    result = runner.invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output


def post_screening(client, project_id: int, token: str, **answers) -> str:
    """Post one screening (`screening_xml` arguments) as a phone would; its case uuid."""
    xml, _, case_uuid = screening_xml(**answers)
    assert post(client, project_id, token, xml).status_code == 201
    return case_uuid


@dataclass
class World:
    """Three cases in one project, one in another, and a session token per kind of user."""

    project_id: int
    other_project_id: int
    girl: str  # 16, Cambodian, forced labour then forced marriage: re-trafficked
    man: str  # 30, Thai, sexual exploitation, owned by mission KHM-PP
    woman: str  # 45, Myanmar and Thai, forced labour and sexual exploitation; closed
    elsewhere: str  # in the other project
    tokens: dict[str, str]
    user_ids: dict[str, int]


def share(case_uuid: str, origin: str, kind: str = "upsert", version: int = 1) -> None:
    """What sync's inbox keeps when a peer sends its case (or forgets it: a tombstone)."""
    db.session.add(
        SyncInboxChange(
            change_id=str(uuid.uuid4()),
            sender_mission=origin,
            origin_mission=origin,
            case_uuid=case_uuid,
            version=version,
            kind=kind,
            payload={},
        )
    )


def api_login(client, user: User) -> str:
    response = client.post("/v1/sessions", json={"email": user.name, "password": PASSWORD})
    assert response.status_code == 200
    return response.json["token"]


def mapped_forms_phone(make) -> tuple[int, str]:
    """A project with the mapped screening and follow-up forms, and an app user who may
    fill both: (project id, token)."""
    project = make.project()
    make.form(SCREENING_MD, project=project)
    make.form(FOLLOW_UP_MD, project=project)
    return project.id, app_user_with_forms(project)[1]


def phone_token(make, project_id: int, *forms: str) -> str:
    project = db.session.get(Project, project_id)
    for markdown in forms:
        make.form(markdown, project=project)
    return app_user_with_forms(project)[1]


def case_row(uuid: str) -> Case:
    return db.session.scalar(select(Case).where(Case.uuid == uuid))


def make_world(make, client, runner) -> World:
    """Cases made as in the field: phones post, the worker normalizes (once, in order)."""
    project_id, other_id = make.project().id, make.project("Elsewhere").id
    token = phone_token(make, project_id, SCREENING_MD, FOLLOW_UP_MD)
    other_token = phone_token(make, other_id, SCREENING_MD)
    girl = post_screening(
        client,
        project_id,
        token,
        birthdate=f"{YEAR - 16}-03-01",
        citizenship="KHM",
        exploitation="forced_labour",
    )
    man = post_screening(
        client,
        project_id,
        token,
        first="Dara",
        gender="masculine",
        birthdate=f"{YEAR - 30}-07-15",
        citizenship="THA",
        exploitation="sexual_exploitation",
    )
    woman = post_screening(
        client,
        project_id,
        token,
        first="Mya",
        birthdate=f"{YEAR - 45}-01-01",
        citizenship="MMR THA",
        exploitation="forced_labour sexual_exploitation",
    )
    assert (
        post(client, project_id, token, follow_up_xml(woman, 1, status="closed")[0]).status_code
        == 201
    )
    elsewhere = post_screening(client, other_id, other_token)
    drain(runner)

    # Made directly: a second episode for the girl (re-trafficked), another owning mission.
    girl_case = case_row(girl)
    db.session.add(
        Episode(
            case_id=girl_case.id,
            person_id=girl_case.person_id,
            types_of_exploitation=["ForcedMarriage"],
        )
    )
    case_row(man).owner_mission = "KHM-PP"
    share(man, "KHM-PP")  # a peer's case, shared with this mission: in scope
    db.session.commit()

    project, other = db.session.get(Project, project_id), db.session.get(Project, other_id)
    users = {
        "admin": make.user("admin"),
        "designer": make.user("designer", projects=[project]),
        "viewer": make.user("viewer", projects=[project]),
        "outsider": make.user("viewer", projects=[other]),
    }
    tokens = {role: api_login(client, user) for role, user in users.items()}
    user_ids = {role: user.id for role, user in users.items()}
    return World(project_id, other_id, girl, man, woman, elsewhere, tokens, user_ids)
