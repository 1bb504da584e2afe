"""Routing at THA: linked missions, the consent gate, the allow-list, tombstones. No database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest

from server.cases.models import Case, Consent, MovementEvent, Person, VictimProfile
from sync.registry import Registry
from sync.routing import linked_missions, route_case
from tests.sync_support import mission, new_key

KHM_FIELDS = ("prs_Gender", "prs_Birthdate", "prs_Citizenship", "hte_Type", "hte_Country")


def registry(khm_fields=KHM_FIELDS) -> Registry:
    missions = [
        mission("THA", new_key()),
        mission("KHM", new_key(), fields=khm_fields),
        mission("MMR", new_key(), fields=("prs_Gender",)),
        mission("MYS", new_key(), fields=("vic_TraffickingStatus",)),
        mission("LAO", new_key()),
    ]
    return Registry({m.code: m for m in missions})


def consent(**values) -> Consent:
    statement = {
        "given": True,
        "sharing": True,
        "purposes": [],
        "recipient_missions": [],
        "withdrawn": False,
    }
    statement.update(values)
    return Consent(uuid=str(uuid.uuid4()), **statement)


def a_case(
    citizenship=("KHM",),
    events=(("Recruitment", "KHM"), ("Exploitation", "THA")),
    consents=(None,),
) -> Case:
    """A Cambodian citizen identified in Thailand, as THA's normalization would leave it."""
    person = Person(
        uuid=str(uuid.uuid4()),
        first_name="Sokha",
        second_name="Chan",
        gender="Feminine",
        birthdate=dt.date(1995, 4, 2),
        citizenship=list(citizenship),
        mobile_phone="+855 12 345 678",
        identity_number="N0123456",
    )
    case = Case(
        uuid=str(uuid.uuid4()), owner_mission="THA", person=person, status="Active", version=1
    )
    case.victim = VictimProfile(trafficking_status="ActualVictimOfTrafficking")
    case.movement_events = [
        MovementEvent(uuid=str(uuid.uuid4()), type=t, country=c, street="12 Soi 4")
        for t, c in events
    ]
    case.consents = [consent() if c is None else c for c in consents]
    return case


def routes(case, previously_shared=()):
    return {r.mission: r for r in route_case(case, registry(), "THA", previously_shared)}


def test_source_and_destination_missions_are_linked_never_this_one():
    reg = registry()
    assert linked_missions(a_case(), reg, "THA") == {"KHM"}
    exploited_abroad = a_case(
        citizenship=("MMR",), events=(("Recruitment", "LAO"), ("Exploitation", "MYS"))
    )
    assert linked_missions(exploited_abroad, reg, "THA") == {"MMR", "LAO", "MYS"}
    identified_here = a_case(citizenship=("KHM",), events=())
    assert linked_missions(identified_here, reg, "THA") == {"KHM"}  # destination: THA itself
    assert linked_missions(a_case(citizenship=(), events=()), reg, "THA") == set()


def test_with_consent_a_linked_mission_gets_its_allowed_fields_only():
    case = a_case()
    [route] = routes(case).values()
    assert (route.mission, route.kind) == ("KHM", "upsert")
    assert route.payload["case"] == {
        "owner_mission": "THA",
        "fields": {
            "prs_Gender": "Feminine",
            "prs_Birthdate": "1995-04-02",
            "prs_Citizenship": ["KHM"],
        },
    }
    assert route.payload["records"] == [
        {"dataset": "movement_events", "uuid": e.uuid, "fields": {"hte_Type": t, "hte_Country": c}}
        for e, (t, c) in zip(
            case.movement_events, [("Recruitment", "KHM"), ("Exploitation", "THA")], strict=True
        )
    ]
    assert route.payload["consent"] == {"purposes": []}
    text = repr(route.payload)
    for personal in ("Sokha", "Chan", "+855", "N0123456", "Soi"):
        assert personal not in text


def test_default_deny_an_empty_allow_list_sends_no_field():
    reg = Registry({**registry().missions, "KHM": mission("KHM", new_key())})
    [route] = route_case(a_case(), reg, "THA")
    assert route.payload["case"]["fields"] == {} and route.payload["records"] == []


def test_local_only_fields_never_leave_even_when_a_registry_lists_them():
    khm = registry().get("KHM")
    forced = dataclasses.replace(
        khm, fields=frozenset({"prs_MobilePhone", "prs_IdentityNumber", "hte_Street", "prs_Gender"})
    )
    reg = Registry({**registry().missions, "KHM": forced})
    [route] = route_case(a_case(), reg, "THA")
    assert route.payload["case"]["fields"] == {"prs_Gender": "Feminine"}
    assert route.payload["records"] == []


@pytest.mark.parametrize(
    "statement",
    [
        consent(given=False),
        consent(given=None),
        consent(sharing=False),
        consent(sharing=None),
        consent(recipient_missions=["MMR"]),
        consent(purposes=["Research"]),
        consent(withdrawn=True, sharing=False),
    ],
)
def test_without_consent_to_share_with_the_mission_nothing_travels(statement):
    assert routes(a_case(consents=(statement,))) == {}


def test_no_consent_statement_at_all_sends_nothing():
    case = a_case()
    case.consents = []
    assert routes(case) == {}


def test_consent_may_name_the_missions_and_the_purpose():
    case = a_case(
        citizenship=("KHM", "MMR"),
        consents=(consent(recipient_missions=["MMR"], purposes=["CaseManagement", "Research"]),),
    )
    assert set(routes(case)) == {"MMR"}


def test_the_latest_consent_statement_is_the_one_in_force():
    case = a_case(consents=(consent(sharing=False), consent()))
    assert set(routes(case)) == {"KHM"}
    case = a_case(consents=(consent(), consent(sharing=False)))
    assert routes(case) == {}


def test_withdrawn_consent_sends_a_tombstone_to_missions_that_had_the_case_only():
    case = a_case(
        citizenship=("KHM", "MMR"), consents=(consent(), consent(withdrawn=True, sharing=False))
    )
    result = routes(case, previously_shared={"KHM"})
    assert set(result) == {"KHM"}
    assert (result["KHM"].kind, result["KHM"].payload) == ("tombstone", {})


def test_a_mission_no_longer_linked_gets_a_tombstone():
    case = a_case(citizenship=("LAO",), events=(("Exploitation", "THA"),))
    result = routes(case, previously_shared={"KHM"})
    assert {m: r.kind for m, r in result.items()} == {"KHM": "tombstone", "LAO": "upsert"}


def test_a_mission_removed_from_the_registry_gets_nothing():
    assert routes(a_case(), previously_shared={"VNM"}).keys() == {"KHM"}


def test_a_former_owner_goes_to_the_new_owner_and_tombstones_no_other_copy():
    """THA transferred the case to KHM: MMR, which THA had shared it with, follows KHM."""
    case = a_case(citizenship=("KHM", "MMR"))
    case.owner_mission = "KHM"
    result = routes(case, previously_shared={"KHM", "MMR"})
    assert {m: r.kind for m, r in result.items()} == {"KHM": "upsert"}
