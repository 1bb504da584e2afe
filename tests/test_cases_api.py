"""GET /v1/cases and /v1/cases/{uuid}: filters, pages, the full case, and who may see what."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from server.audit.models import AuditEvent
from server.cases.fields import FIELDS
from server.extensions import db
from tests.cases_support import World, api_login, case_row, make_world, share

YEAR = dt.date.today().year
NO_CASE = "00000000-0000-0000-0000-000000000000"
SUMMARY_KEYS = {
    "uuid",
    "project_id",
    "owner_mission",
    "label",
    "version",
    "opened_at",
    "updated_at",
    "cas_Reference",
    "cas_Status",
    "prs_Gender",
    "prs_Citizenship",
    "birth_year",
    "age_band",
    "vic_TypeOfExploitation",
    "retrafficked",
}


@pytest.fixture
def world(make, client, runner) -> World:
    return make_world(make, client, runner)


def _get(client, world: World, path: str, who: str = "viewer", **params):
    headers = {"Authorization": f"Bearer {world.tokens[who]}"}
    return client.get(path, headers=headers, query_string=params)


def _uuids(response) -> list[str]:
    assert response.status_code == 200, response.json
    return [row["uuid"] for row in response.json]


def test_the_list_is_newest_first_in_pages_with_a_total_and_no_names(client, world):
    response = _get(client, world, "/v1/cases")
    assert _uuids(response) == [world.woman, world.man, world.girl]
    assert response.headers["X-Total-Count"] == "3"
    assert all(set(row) == SUMMARY_KEYS for row in response.json)
    for name in (b"Sokha", b"Dara", b"Mya", b"Chan"):
        assert name not in response.data
    girl = response.json[2]
    assert girl["cas_Reference"] == f"CB-{world.girl[:8]}" and girl["cas_Status"] == "Active"
    assert (girl["prs_Gender"], girl["prs_Citizenship"]) == ("Feminine", ["KHM"])
    assert (girl["birth_year"], girl["age_band"]) == (YEAR - 16, "0-17")
    assert girl["vic_TypeOfExploitation"] == ["ForcedLabour", "ForcedMarriage"]
    assert girl["retrafficked"] is True and response.json[1]["retrafficked"] is False
    assert girl["owner_mission"] == "LOCAL" and girl["project_id"] == world.project_id
    assert girl["opened_at"].endswith("Z") and girl["version"] == 1

    first = _get(client, world, "/v1/cases", limit=2)
    second = _get(client, world, "/v1/cases", limit=2, offset=2)
    assert _uuids(first) == [world.woman, world.man] and _uuids(second) == [world.girl]
    assert first.headers["X-Total-Count"] == second.headers["X-Total-Count"] == "3"
    assert _uuids(_get(client, world, "/v1/cases", offset=3)) == []
    empty = _get(client, world, "/v1/cases", limit=0)
    assert _uuids(empty) == [] and empty.headers["X-Total-Count"] == "3"
    assert len(_uuids(_get(client, world, "/v1/cases", limit=10_000))) == 3  # cut to 500


FILTERS = [
    ({"status": "Closed"}, ["woman"]),
    ({"status": "active"}, ["man", "girl"]),  # the form's choice name works too
    ({"gender": "Feminine"}, ["woman", "girl"]),
    ({"gender": "masculine"}, ["man"]),
    ({"age_band": "0-17"}, ["girl"]),
    ({"age_band": "18-25"}, []),
    ({"age_band": "26-35"}, ["man"]),
    ({"age_band": "36-50"}, ["woman"]),
    ({"age_band": "51+"}, []),
    ({"citizenship": "THA"}, ["woman", "man"]),
    ({"citizenship": "MMR"}, ["woman"]),
    ({"citizenship": "kh"}, ["girl"]),  # alpha-2 in any case is read as its alpha-3
    ({"exploitation": "ForcedLabour"}, ["woman", "girl"]),
    ({"exploitation": "SexualExploitation"}, ["woman", "man"]),
    ({"exploitation": "ForcedMarriage"}, ["girl"]),  # from the second episode
    ({"mission": "KHM-PP"}, ["man"]),
    ({"mission": "LOCAL"}, ["woman", "girl"]),
    ({"retrafficked": "true"}, ["girl"]),
    ({"retrafficked": "false"}, ["woman", "man"]),
    ({"gender": "Feminine", "citizenship": "KHM"}, ["girl"]),
    ({"status": "Active", "exploitation": "SexualExploitation"}, ["man"]),
    ({"q": "cb-"}, ["woman", "man", "girl"]),
    ({"q": "CB%"}, []),  # LIKE wildcards are matched literally
    ({"gender": "", "q": " "}, ["woman", "man", "girl"]),  # blank means no filter
    ({"unknown": "ignored"}, ["woman", "man", "girl"]),
]


def test_each_filter(client, world, subtests):
    """One set of cases for every filter: making cases through the worker takes seconds."""
    for params, expected in FILTERS:
        with subtests.test(**params):
            response = _get(client, world, "/v1/cases", **params)
            assert _uuids(response) == [getattr(world, name) for name in expected]
            assert response.headers["X-Total-Count"] == str(len(expected))
    with subtests.test("a whole reference finds its case"):
        reference = f"CB-{world.man[:8]}"
        assert _uuids(_get(client, world, "/v1/cases", q=reference)) == [world.man]


def test_the_full_case_has_htcds_keys_its_records_and_history(client, world):
    response = _get(client, world, f"/v1/cases/{world.girl}")
    assert response.status_code == 200
    case = response.json
    assert set(case) >= {"uuid", "cas_Reference", "cas_Status", "owner_mission", "version"}
    assert set(case) >= {"opened_at", "closed_at", "person", "victim", "episodes", "consent"}
    assert set(case) >= {"movement_events", "perpetrators", "support_plans", "assistance"}
    assert case["uuid"] == world.girl and case["cas_Status"] == "Active"
    assert case["closed_at"] is None and case["retrafficked"] is True

    person = case["person"]
    assert set(person) == {"uuid"} | {n for n, f in FIELDS.items() if f.part == "person"}
    assert (person["prs_FirstName"], person["prs_SecondName"]) == ("Sokha", "Chan")
    assert person["prs_Birthdate"] == f"{YEAR - 16}-03-01" and person["prs_Email"] is None
    assert person["prs_Citizenship"] == ["KHM"] and person["prs_NumberOfChildren"] == 2
    assert case["victim"]["vic_TraffickingStatus"] == "ActualVictimOfTrafficking"
    episodes = case["episodes"]
    assert [e["vic_TypeOfExploitation"] for e in episodes] == [["ForcedLabour"], ["ForcedMarriage"]]
    events = [(e["hte_Type"], e["hte_Country"], e["hte_Date"]) for e in case["movement_events"]]
    assert events == [("Recruitment", "KHM", "2024-01-10"), ("Exploitation", "THA", "2024-02-01")]
    assert all(e["uuid"] and e["hte_City"] is None for e in case["movement_events"])
    assert case["perpetrators"] == case["support_plans"] == case["assistance"] == []
    consent = case["consent"]
    assert (consent["con_Consent"], consent["con_Sharing"], consent["con_Withdrawn"]) == (
        True,
        True,
        False,
    )
    assert consent["con_Purposes"] == [] and consent["con_RecipientMissions"] == []

    [version] = case["versions"]
    assert version["version"] == 1 and version["instanceId"].startswith("uuid:")
    assert version["submitter"] == {
        "type": "field_key",
        "id": version["submitter"]["id"],
        "displayName": "Phone 1",
    }
    assert version["changes"]["create"] is True and version["conflicts"] == []
    assert version["created_at"].endswith("Z") and version["base_version"] is None

    [viewed] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "case.view"))
    assert (viewed.user_id, viewed.object_type, viewed.object_id) == (
        world.user_ids["viewer"],
        "case",
        world.girl,
    )
    assert viewed.mission == "LOCAL" and viewed.details == {"via": "api"}

    # A closed case, and its history of two changes.
    case = _get(client, world, f"/v1/cases/{world.woman}").json
    assert case["cas_Status"] == "Closed" and case["closed_at"].endswith("Z")
    assert case["version"] == 2 and [v["version"] for v in case["versions"]] == [1, 2]
    assert case["versions"][1]["base_version"] == 1
    assert case["versions"][1]["changes"]["fields"] == {"cas_Status": "Closed"}
    assert case["versions"][0]["instanceId"] != case["versions"][1]["instanceId"]


def test_who_sees_which_cases(client, world):
    for who in ("admin", "designer", "viewer"):
        assert _get(client, world, f"/v1/cases/{world.man}", who).status_code == 200, who

    everything = _get(client, world, "/v1/cases", "admin")
    assert _uuids(everything)[0] == world.elsewhere
    assert everything.headers["X-Total-Count"] == "4"
    only_other = _get(client, world, "/v1/cases", "admin", project_id=world.other_project_id)
    assert _uuids(only_other) == [world.elsewhere]
    # A project filter never widens what a user sees.
    assert _uuids(_get(client, world, "/v1/cases", project_id=world.other_project_id)) == []

    outsider = _get(client, world, "/v1/cases", "outsider")
    assert _uuids(outsider) == [world.elsewhere] and outsider.headers["X-Total-Count"] == "1"
    hidden = _get(client, world, f"/v1/cases/{world.girl}", "outsider")
    unknown = _get(client, world, f"/v1/cases/{NO_CASE}", "outsider")
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json == unknown.json and hidden.json["code"] == 404.1  # hidden = absent
    refused = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "case.refused"))
    assert [(e.user_id, e.object_id) for e in refused] == [
        (world.user_ids["outsider"], world.girl),
        (world.user_ids["outsider"], NO_CASE),
    ]


def test_collectors_use_openrosa_only(client, make):
    token = api_login(client, make.user("collector"))
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/cases", headers=auth).status_code == 403
    response = client.get(f"/v1/cases/{NO_CASE}", headers=auth)
    assert response.status_code == 403 and response.json["code"] == 403.1


def test_no_session_is_401(client):
    assert client.get("/v1/cases").status_code == 401
    response = client.get(f"/v1/cases/{NO_CASE}")
    assert response.status_code == 401 and response.json["code"] == 401.2


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("status", "Open"),
        ("gender", "robot"),
        ("age_band", "17-30"),
        ("citizenship", "XYZ"),
        ("exploitation", "Flying"),
        ("mission", "not a mission"),
        ("retrafficked", "maybe"),
        ("project_id", "one"),
        ("q", "x" * 65),
        ("limit", "-1"),
        ("offset", "x"),
    ],
)
def test_a_bad_filter_is_400_and_says_which(client, make, param, value):
    token = api_login(client, make.user("viewer"))
    response = client.get(
        "/v1/cases", headers={"Authorization": f"Bearer {token}"}, query_string={param: value}
    )
    assert response.status_code == 400
    assert response.json["code"] == 400.8 and param in response.json["message"]
    assert param in response.json["details"]


def test_a_case_of_another_mission_is_out_of_reach_unless_its_owner_shares_it(client, world):
    """Mission scope holds for admins too: the node's mission, plus what peers share."""
    case_row(world.girl).owner_mission = "MMR-YG"  # e.g. transferred away, or never shared
    db.session.commit()
    for who in ("admin", "designer", "viewer"):
        assert _get(client, world, f"/v1/cases/{world.girl}", who).status_code == 404, who
        listed = _uuids(_get(client, world, "/v1/cases", who, mission="MMR-YG"))
        assert listed == [], who
    assert world.girl not in _uuids(_get(client, world, "/v1/cases", "admin"))

    share(world.girl, "KHM-PP")  # another peer cannot share a case it does not own
    db.session.commit()
    assert _get(client, world, f"/v1/cases/{world.girl}", "admin").status_code == 404

    share(world.girl, "MMR-YG")
    db.session.commit()
    assert _get(client, world, f"/v1/cases/{world.girl}", "viewer").status_code == 200

    share(world.girl, "MMR-YG", kind="tombstone", version=2)  # sharing withdrawn
    share(world.man, "KHM-PP", kind="tombstone", version=2)
    db.session.commit()
    assert _get(client, world, f"/v1/cases/{world.girl}", "admin").status_code == 404
    assert _uuids(_get(client, world, "/v1/cases", "admin")) == [world.elsewhere, world.woman]


def test_each_list_is_audited_with_its_filters_but_not_typed_text(client, world):
    _get(client, world, "/v1/cases", gender="Feminine", q="CB-zz", limit=1)
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "case.list"))
    assert event.user_id == world.user_ids["viewer"] and event.object_id is None
    assert event.details == {"gender": "Feminine", "q": "(given)", "via": "api", "total": 0}
