"""Routing: which linked missions a case goes to, and what each may receive.

Plain functions over a Case and the registry; no database, no HTTP.

1. Linked missions: the destination (the countries of the case's exploitation movement
   events; without any, the countries this mission serves, where the person was
   identified) and the source (the person's citizenships and the countries of recruitment
   events), mapped to the missions serving them; never this mission.
2. The consent gate, on the latest Consent: a mission receives the case only if consent is
   given, sharing is yes, it is not withdrawn, the mission is among `recipient_missions`
   (empty = every linked mission) and, when `purposes` is not empty, it includes
   SYNC_PURPOSE. No consent statement: nothing travels, not even a notice.
3. The allow-list: only the fields the registry lists for that mission (default deny),
   never a local-only field. A dataset none of whose fields are allowed is left out whole.
4. A mission that received the case before and may not any more (consent withdrawn or
   narrowed, the case no longer linked to it) gets a tombstone: the case uuid and nothing
   else. A mission that never received it gets nothing, so a withdrawal tells no new
   mission that the case exists.
5. A mission the owner referred the case to (an accepted referral, sync.transfers) is
   linked too, with its allow-list; when the referral ends, rule 4 withdraws its copy.
   A referred mission counts as holding a copy for rule 4: a referral handed over by a
   transfer holds the old owner's copy, which this owner never sent but must withdraw
   when its consent statement does not let the case go there.
6. A copy of another mission's case (received here, then followed up here) is linked to
   its owner only, and carries only what this version changed (`only_changes`): the owner
   holds the consent statement and relays to the other linked missions itself. A former
   owner (the case transferred away) tombstones none of the missions it shared the case
   with: they were told the new owner (sync.outbox.record_owner_handover), whose routing
   decides what they hold.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from server.cases.fields import CHILD_FIELDS, FIELDS, Field, Record
from server.cases.models import Case, Consent
from sync.registry import Mission, Registry

#: What a linked mission does with a case it receives; consent purposes must allow it.
SYNC_PURPOSE = "CaseManagement"
#: The case-level parts that travel as the case's fields; episodes travel as records.
CASE_PARTS = ("case", "person", "victim")
#: Each child dataset and the case's collection of those records.
CHILD_COLLECTIONS = {
    Record.EPISODES: "episodes",
    Record.MOVEMENT_EVENTS: "movement_events",
    Record.PERPETRATORS: "perpetrators",
    Record.SUPPORT_PLANS: "support_plans",
    Record.ASSISTANCE: "assistance",
}


@dataclass(frozen=True)
class Route:
    mission: str
    #: upsert (the case as this mission may see it) or tombstone (forget it).
    kind: str
    payload: dict


def destination_countries(case: Case, own_countries: Iterable[str]) -> set[str]:
    exploitation = {
        e.country for e in case.movement_events if e.type == "Exploitation" and e.country
    }
    return exploitation or set(own_countries)


def source_countries(case: Case) -> set[str]:
    countries = set(case.person.citizenship or []) if case.person is not None else set()
    countries.update(
        e.country for e in case.movement_events if e.type == "Recruitment" and e.country
    )
    return countries


def linked_missions(case: Case, registry: Registry, own_mission: str) -> set[str]:
    """The missions serving the case's destination and source countries, except this one."""
    own = registry.get(own_mission)
    destination = destination_countries(case, own.countries if own else ())
    countries = destination | source_countries(case)
    return {
        mission.code
        for country in countries
        for mission in registry.serving(country)
        if mission.code != own_mission
    }


def consent_allows(consent: Consent | None, mission_code: str) -> bool:
    if consent is None or consent.withdrawn:
        return False
    if consent.given is not True or consent.sharing is not True:
        return False
    if consent.recipient_missions and mission_code not in consent.recipient_missions:
        return False
    return not consent.purposes or SYNC_PURPOSE in consent.purposes


def route_case(
    case: Case,
    registry: Registry,
    own_mission: str,
    previously_shared: Iterable[str] = (),
    referred: Iterable[str] = (),
) -> list[Route]:
    """What to send to each mission for the case as it is now, by mission code."""
    shared_before = set(previously_shared)
    if case.owner_mission == own_mission:
        linked = linked_missions(case, registry, own_mission) | set(referred)
        shared_before |= set(referred)
    else:
        linked = {case.owner_mission}  # a copy goes back to its owner, who relays
        # a former owner's other copies follow the new owner now: theirs to withdraw
        shared_before &= linked
    routes = []
    for code in sorted(linked | shared_before):
        mission = registry.get(code)
        if mission is None or code == own_mission:
            continue  # no longer registered: nothing can reach it
        if code in linked and consent_allows(case.consent, code):
            routes.append(Route(code, "upsert", case_payload(case, mission)))
        elif code in shared_before:
            routes.append(Route(code, "tombstone", {}))
    return routes


def case_payload(case: Case, mission: Mission) -> dict:
    """The case as `mission` may see it: allowed fields only, plus the consented purposes."""
    allowed = mission.fields
    parts = {"case": case, "person": case.person, "victim": case.victim}
    fields = {
        spec.name: json_value(getattr(parts[spec.part], spec.attribute, None))
        for spec in FIELDS.values()
        if spec.part in CASE_PARTS and _may_send(spec, allowed) and parts[spec.part] is not None
    }
    records = []
    for dataset, collection in CHILD_COLLECTIONS.items():
        specs = [s for s in CHILD_FIELDS[dataset].values() if _may_send(s, allowed)]
        if not specs:
            continue
        for record in getattr(case, collection):
            records.append(
                {
                    "dataset": dataset.value,
                    "uuid": record.uuid,
                    "fields": {s.name: json_value(getattr(record, s.attribute)) for s in specs},
                }
            )
    return {
        "case": {"owner_mission": case.owner_mission, "fields": fields},
        "consent": {"purposes": list(case.consent.purposes) if case.consent else []},
        "records": records,
    }


def only_changes(payload: dict, changes: dict) -> dict | None:
    """An upsert payload cut down to what one CaseVersion changed; None if nothing is left.

    What a copy sends its owner: its own follow-up, not the owner's values echoed back
    (nor blanks where the owner kept back a field).
    """
    changed_fields = changes.get("fields") or {}
    changed_records = {r["uuid"]: r.get("fields") or {} for r in changes.get("records") or []}
    fields = {k: v for k, v in payload["case"]["fields"].items() if k in changed_fields}
    records = [
        {**record, "fields": {k: v for k, v in record["fields"].items() if k in changed}}
        for record in payload["records"]
        if (changed := changed_records.get(record["uuid"])) is not None
    ]
    if not fields and not records:
        return None
    return {**payload, "case": {**payload["case"], "fields": fields}, "records": records}


def _may_send(spec: Field, allowed: frozenset[str]) -> bool:
    return spec.name in allowed and not spec.local_only


def json_value(value: object) -> object:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return list(value)
    return value
