"""A small mapped screening form, its submissions, and posting them as a phone does."""

from __future__ import annotations

import uuid

from tests.factories import multipart

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
        f"<ref>CB-{case_id[:8]}</ref><consent>{consent}</consent><share>true</share>"
        f"<first>{first}</first><family>Chan</family><gender>{gender}</gender>"
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
