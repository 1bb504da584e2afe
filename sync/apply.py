"""A linked mission's change, applied to the cases here: the receiving end of routing.

- An **upsert from a case's owner** creates or updates the local copy: owner_mission is
  the origin, it lands in the default project with a person of its own, and a consent
  statement says it may go back to its owner only. Fields present in the payload are set;
  fields absent are left as they are (a field this mission changed and the owner does not
  send stays).
- An **upsert from a case's owner naming another mission as owner** is the owner's word
  that it transferred the case (sync.outbox.record_owner_handover): the copy follows the
  new owner (owner_mission, and a copy consent statement naming the old owner, updated;
  a version records it). Only the current owner's word is taken, and never for this
  mission itself: it owns a case only by accepting a transfer.
- An **upsert from a mission holding a copy of a case this mission owns** (its follow-up
  there; only from a mission this one shared the case with, and still shares it with)
  sets the fields it changed. This mission then routes its new version as usual:
  the owner relays to the other linked missions, under its own consent statement.
- Either way, **field by field by their clocks** (sync.clock, sync.merge): a field is set
  only if its incoming write is newer than the local one, or concurrent with it and has
  the bigger clock (recorded in the version's `changes["merged"]`). Status, owner and
  consent written concurrently keep their local value: the version lists them in
  `conflicts`, and a `conflict` review item is opened (sync.review) at the owner (status,
  owner: its decision then travels) or, for consent, at the copy (a copy's consent
  statement is its own). At a copy, status and owner are protected only if it may send
  them to the owner (else no one could review them: they merge by clock). A field the
  owner holds back while its conflict is open is not taken. The case's clocks then take
  in the sender's.
- A **tombstone from a case's owner** withdraws the local copy: every field and record the
  owner ever sent is blanked or deleted, the payloads kept of its changes are emptied, and
  a withdrawn consent statement ends sharing. The case row stays (without personal data),
  as do this mission's own records and submissions about it: never delete our own data.
- A **transfer's messages** (request, answer, revocation, the case handed over) are
  sync.transfers' to apply. A mission that transferred a case here keeps a copy: its
  follow-ups are taken like those of a mission this one shared the case with.
- An **upsert or tombstone from a mission claiming a case whose copy here another owns**
  is answered `not_yet` (see NOT_YET): after a transfer the new owner's first change may
  come before the old owner's word; the sender sends it again later, and it is applied
  then. (Only an owner sends a copy a tombstone: sync.routing.)
- Anything else (a tombstone for our own case, say) is acknowledged as `ignored`, and
  changes nothing.

**No duplicate persons**: before an owner's case becomes a new copy here, the person
encoding it carries (`payload["linkage"]`, keyed with the secret linked missions share:
never names) is matched against the local persons (sync.linkage_store). A certain match:
the copy's person is that person (no second Person; its earlier episodes and this case's
make it re-trafficked, see server.cases.queries.is_retrafficked), and the owner's person
values only fill what this mission left blank. A possible match: the copy gets a person of
its own, keeping the encoding, and a review item is opened (sync.review). Without a secret
here, or an encoding in the change, there is no matching.

Order: each origin numbers its own versions of a case. The newest applied per case and
origin is kept (SyncAppliedVersion); an older change arriving later is `stale`: kept in
the inbox, acknowledged, not applied. Only the field table's fields that may travel are
read (sync.payload), each value checked as a submitted one would be; a change with a bad
value or clock is `invalid`, is not kept, and its sender retries it until it is dead
(visible to its admins).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select, update

from server.cases.fields import CHILD_FIELDS, FIELDS, MULTI_KINDS, Field, Record
from server.cases.models import Case, CaseVersion, Consent, Episode, Person, new_uuid
from server.cases.operations import CHILD_MODELS, derive, set_field, set_record_field
from server.extensions import db
from server.projects.operations import default_project
from sync.clock import CONSENT, OWNER, PROTECTED, load_clock, take_in
from sync.linkage import Match, PersonEncoding
from sync.linkage_store import (
    current_linkage,
    find_matches,
    forget_encoding,
    store_encodings,
)
from sync.merge import Merge, merge
from sync.models import (
    TRANSFER_CHANGE_KINDS,
    SyncAppliedVersion,
    SyncCaseClock,
    SyncInboxChange,
    SyncTransfer,
)
from sync.outbox import former_owners, previously_shared, record_case_change
from sync.payload import Payload, read_payload
from sync.registry import Registry, load_registry
from sync.review import propose_conflict, propose_duplicate
from sync.routing import CASE_PARTS, SYNC_PURPOSE
from sync.transfers import follow_referrals

#: What an upsert or a tombstone did; all but `invalid` and `not_yet` tell the sender it
#: is delivered. `not_yet`: an upsert from a mission claiming a case this mission holds a
#: copy of, owned here by another: the owner may have transferred it to that mission and
#: its word (sync.outbox.record_owner_handover) not be here yet; or a copy's follow-up
#: addressed to this mission as the case's owner before the transfer handing it over is
#: applied here. Not kept, so that the sender's next attempt is applied once the word
#: came; dead-lettered there if it never comes (for its admins to see), never dropped.
APPLIED, STALE, IGNORED, INVALID, NOT_YET = "applied", "stale", "ignored", "invalid", "not_yet"


def apply_received(change: dict, *, own_mission: str, registry: Registry | None = None) -> str:
    """Apply one checked change (see sync.schemas) to the cases; its ack status.

    Raises InvalidChange before writing anything. The caller records the change in the
    inbox and commits.
    """
    if change["kind"] in TRANSFER_CHANGE_KINDS:
        from sync.transfer_inbox import receive  # it applies a handed-over case here

        return receive(change, own_mission=own_mission, registry=registry)
    payload = read_payload(change["payload"]) if change["kind"] == "upsert" else Payload()
    applied = db.session.get(SyncAppliedVersion, (change["case_uuid"], change["origin_mission"]))
    if applied is not None and applied.version >= change["version"]:
        return STALE
    case = db.session.scalar(select(Case).where(Case.uuid == change["case_uuid"]))
    if change["kind"] == "upsert":
        status = _upsert(case, change, payload, own_mission, registry)
    else:
        status = _tombstone(case, change, own_mission)
    if status not in (IGNORED, NOT_YET):
        _remember(applied, change)
    return status


def _remember(applied: SyncAppliedVersion | None, change: dict) -> None:
    if applied is None:
        applied = SyncAppliedVersion(
            case_uuid=change["case_uuid"], origin_mission=change["origin_mission"]
        )
        db.session.add(applied)
    applied.version, applied.kind = change["version"], change["kind"]
    applied.change_id = change["change_id"]


# ---- upserts --------------------------------------------------------------------------


def apply_handed_over(case: Case | None, change: dict, own_mission: str, registry) -> str:
    """A case its owner transfers to this mission (sync.transfers), applied as that owner's
    view of it: a new copy, or the copy here brought up to date. The caller then makes it
    this mission's."""
    payload = read_payload(change["payload"])
    payload.owner_mission = change["origin_mission"]
    upsert = {**change, "kind": "upsert"}
    status = _upsert(case, upsert, payload, own_mission, registry)
    if status == NOT_YET:
        return IGNORED  # a copy of another mission's: the transfer's owner was not its owner
    if status != IGNORED:
        key = (change["case_uuid"], change["origin_mission"])
        _remember(db.session.get(SyncAppliedVersion, key), upsert)
    return status


def _upsert(case: Case | None, change: dict, payload: Payload, own_mission: str, registry) -> str:
    origin = change["origin_mission"]
    handed_to = None
    if case is None:
        if payload.owner_mission == own_mission != origin:
            return NOT_YET  # a follow-up to this mission as owner before the case it hands over
        if payload.owner_mission != origin or origin == own_mission:
            return IGNORED  # only an owner shares a case; a case of ours that is gone stays gone
        case, linked, possible = _new_copy(change["case_uuid"], origin, payload.linkage)
        created = True
    elif case.owner_mission == origin != own_mission:
        created, linked, possible = False, {}, []  # the owner's newer view of our copy
        handed_to = _handed_to(origin, payload.owner_mission, own_mission, registry)
    elif (
        case.owner_mission == own_mission
        and payload.owner_mission == own_mission
        and (
            origin in previously_shared(db.session, case.uuid)
            or origin in former_owners(db.session, case.uuid, own_mission)
        )
    ):
        # a follow-up of our case by a mission we shared it with
        created, linked, possible = False, {}, []
    elif case.owner_mission != own_mission and payload.owner_mission == origin != own_mission:
        return NOT_YET  # a new owner's upsert before the old owner's word
    elif case.owner_mission != own_mission and payload.owner_mission == own_mission:
        return NOT_YET  # a copy's follow-up to this mission as owner, before the handover
    else:
        return IGNORED
    owner_here = case.owner_mission == own_mission
    clock = load_clock(db.session, case.uuid)
    # the owner never takes a copy's consent (the copy's statement is its own), and a copy
    # never takes ownership from an upsert (transfers are accepted, not synced)
    decided = merge(
        clock,
        payload.clock,
        payload.keys - {CONSENT if owner_here else OWNER},
        PROTECTED if owner_here else _protected_at_copy(origin, registry),
    )
    keep_person = not owner_here and _person_shared(case)
    fields = {
        name: v
        for name, v in payload.fields.items()
        if name in decided.take
        and not (keep_person and _kept(case.person, FIELDS[name]))
        and set_field(case, FIELDS[name], v)
    }
    records = [
        r
        for r in (_apply_record(case, *_taken(record, decided)) for record in payload.records)
        if r
    ]
    if not owner_here and CONSENT in decided.take:
        copy_consent(case, origin, payload.purposes)
    take_in(clock, payload.clock, decided.taken())
    if handed_to is not None:
        follow_new_owner(case, origin, handed_to)
    if not (created or handed_to or fields or records or decided.merged or decided.conflicts):
        return APPLIED  # nothing new (e.g. the owner's echo of our own follow-up)
    if case.label is None and case.reference:
        case.label = case.reference
    derive(case)
    case.version += 1
    changes = {"create": created, "origin_mission": origin, "fields": fields, "records": records}
    version = CaseVersion(
        case=case,
        version=case.version,
        sync_change_id=change["change_id"],
        changes=changes
        | ({"owner_mission": {"from": origin, "to": handed_to}} if handed_to else {})
        | ({"linked": linked} if linked else {})
        | ({"merged": decided.merged} if decided.merged else {}),
        conflicts=[c.field for c in decided.conflicts],
    )
    db.session.add(version)
    db.session.flush()
    # status and owner: the owner decides and its decision travels; a copy keeps its value
    # until then. Consent: a copy's own statement, decided where it is kept.
    reviewed = [c for c in decided.conflicts if owner_here or c.field == CONSENT]
    if reviewed:
        propose_conflict(case, change["change_id"], origin, reviewed)
        if owner_here:
            clock.held = sorted(set(clock.held) | {c.field for c in reviewed})
    if possible:
        propose_duplicate(case, possible)
    if case.owner_mission == own_mission:
        record_case_change(db.session, case, version, registry=registry, own_mission=own_mission)
    return APPLIED


def _handed_to(
    owner: str, named: str | None, own_mission: str, registry: Registry | None
) -> str | None:
    """The mission the copy's owner says it transferred the case to, if it is one to
    follow: a registered mission other than the owner and this one (a copy never takes
    ownership for itself from an upsert: only by accepting a transfer)."""
    if named is None or named in (owner, own_mission):
        return None
    registry = registry if registry is not None else load_registry()
    return named if registry.get(named) is not None else None


def follow_new_owner(case: Case, old_owner: str, new_owner: str) -> None:
    """The copy's owner is the new owner now. A consent statement that let the copy go back
    to the old owner lets it go to the new one instead; a statement of the copy's own
    (withdrawn, or naming other missions) stays as it is."""
    case.owner_mission = new_owner
    follow_referrals(case.uuid, old_owner, new_owner)
    consent = case.consent
    to_old_owner = consent is not None and list(consent.recipient_missions or []) == [old_owner]
    if not to_old_owner or consent.withdrawn:
        return
    case.consents.append(
        Consent(
            uuid=new_uuid(),
            given=consent.given,
            sharing=consent.sharing,
            research=consent.research,
            purposes=list(consent.purposes or []),
            recipient_missions=[new_owner],
            withdrawn=False,
        )
    )


def _protected_at_copy(owner: str, registry: Registry | None) -> frozenset[str]:
    """At a copy, consent (its own statement), and status or owner only where this mission
    may send them to the owner: a write the owner can never see could never be reviewed
    there, so it merges by clock like an ordinary field."""
    registry = registry if registry is not None else load_registry()
    mission = registry.get(owner)
    allowed = mission.fields if mission is not None else frozenset()
    return frozenset({CONSENT} | (PROTECTED & allowed))


def _taken(
    record: tuple[Record, str, dict[str, object]], decided: Merge
) -> tuple[Record, str, dict[str, object]]:
    """A received record with only the fields the merge takes."""
    dataset, uuid, values = record
    return (
        dataset,
        uuid,
        {k: v for k, v in values.items() if f"{dataset.value}/{uuid}/{k}" in decided.take},
    )


def _new_copy(
    case_uuid: str, origin: str, encoding: PersonEncoding | None
) -> tuple[Case, dict, list[Match]]:
    """A linked mission's case, held here, in the default project: with the local person it
    certainly is, else with a person of its own. Also what linkage found (for the version)
    and the possible matches (for review)."""
    project = default_project(current_app.config["DEFAULT_PROJECT_NAME"])
    chosen = _referred_person(case_uuid, origin)
    if chosen is not None:
        encoding = None  # the person this mission said it is, when it accepted the referral
    linkage = current_linkage() if encoding is not None else None
    matches = find_matches(encoding, linkage) if linkage is not None else []
    certain = [m for m in matches if m.status == "certain"]
    person = chosen or (db.session.get(Person, int(certain[0].local)) if certain else None)
    if person is None:
        person = Person(uuid=new_uuid(), citizenship=[])
    case = Case(
        uuid=case_uuid,
        project_id=project.id,
        person=person,
        owner_mission=origin,
        status="Active",
        version=0,
    )
    db.session.add(case)
    if linkage is not None and person.id is None:
        db.session.flush()  # the person's id, for its encoding
        store_encodings([(person.id, encoding)], linkage.key_id, "peer")
        person.needs_linkage = False
    if certain:
        return case, {"status": "certain", "reason": certain[0].reason}, []
    if matches:
        return case, {"status": "possible", "reason": matches[0].reason}, matches
    return case, {}, []


def _referred_person(case_uuid: str, origin: str) -> Person | None:
    """The local person chosen when this mission accepted the owner's referral, if any."""
    person_id = db.session.scalar(
        select(SyncTransfer.person_id).where(
            SyncTransfer.case_uuid == case_uuid,
            SyncTransfer.from_mission == origin,
            SyncTransfer.kind == "referral",
            SyncTransfer.state == "accepted",
            SyncTransfer.person_id.is_not(None),
        )
    )
    return db.session.get(Person, person_id) if person_id is not None else None


def _person_shared(case: Case) -> bool:
    """The copy's person is one this mission knew already (linked): it has other cases."""
    return any(other is not case for other in case.person.cases)


def _kept(person: Person, spec: Field) -> bool:
    """A linked person's value this mission holds: the owner's only fills blanks."""
    if spec.part != "person":
        return False
    value = getattr(person, spec.attribute)
    return value is not None and value != []


def _apply_record(case: Case, dataset: Record, uuid: str, values: dict) -> dict | None:
    model, collection = CHILD_MODELS[dataset]
    record = db.session.scalar(select(model).where(model.uuid == uuid))
    if record is not None and record.case_id is not None and record.case_id != case.id:
        return None  # another case's record: not this change's to touch
    created = record is None
    if created:
        record = model(uuid=uuid)
        getattr(case, collection).append(record)  # in the session first, then the person's
        if model is Episode:
            record.person = case.person
    specs = CHILD_FIELDS[dataset]
    changed = {k: v for k, v in values.items() if set_record_field(record, specs[k], v)}
    if not (created or changed):
        return None
    return {"dataset": dataset.value, "uuid": uuid, "fields": changed}


def copy_consent(case: Case, owner: str, purposes: list[str]) -> None:
    """What the owner's consent lets this copy do: go back to the owner, for its purposes."""
    wanted = {
        "given": True,
        "sharing": True,
        "purposes": sorted(set(purposes)) or [SYNC_PURPOSE],
        "recipient_missions": [owner],
        "withdrawn": False,
    }
    current = case.consent
    if current is not None and all(getattr(current, k) == v for k, v in wanted.items()):
        return
    case.consents.append(Consent(uuid=new_uuid(), research=None, **wanted))


# ---- tombstones -----------------------------------------------------------------------


def _tombstone(case: Case | None, change: dict, own_mission: str) -> str:
    origin = change["origin_mission"]
    if case is None:
        return APPLIED  # nothing held; remembered, so that an older upsert stays out
    if case.owner_mission == own_mission or origin == own_mission:
        return IGNORED  # never delete this mission's own data
    if case.owner_mission != origin:
        return NOT_YET  # a new owner's tombstone before the old owner's word
    withdraw_copy(case, origin, change["change_id"])
    clock = db.session.get(SyncCaseClock, case.uuid)
    if clock is not None:
        db.session.delete(clock)  # what comes next from the owner is all new here
    return APPLIED


def withdraw_copy(case: Case, origin: str, change_id: str) -> None:
    """Remove what the case's owners sent about it: their fields, records and payloads.

    Every owner's, not only `origin`'s (the owner withdrawing it): after a transfer the
    copy holds what the old owner sent, and the new owner's tombstone withdraws that too.
    A copy receives only from owners (the others' follow-ups reach it through the owner).
    """
    received = db.session.execute(
        select(
            SyncInboxChange.change_id, SyncInboxChange.payload, SyncInboxChange.origin_mission
        ).where(SyncInboxChange.case_uuid == case.uuid)
    ).all()
    names: set[str] = set()
    record_uuids: set[str] = set()
    for _, payload, _ in received:
        names.update((payload.get("case") or {}).get("fields") or {})
        record_uuids.update(r.get("uuid") for r in payload.get("records") or [])
    person_shared = any(other is not case for other in case.person.cases)
    for name in sorted(names):
        spec = FIELDS.get(name)
        if spec is None or spec.part not in CASE_PARTS or (spec.part == "person" and person_shared):
            continue
        set_field(case, spec, [] if spec.kind in MULTI_KINDS else None)
    if not person_shared:
        case.person.birth_year = None
        forget_encoding(case.person.id)  # the owner's encoding of the person goes too
    for _model, collection in CHILD_MODELS.values():
        records = getattr(case, collection)
        for record in [r for r in records if r.uuid in record_uuids]:
            records.remove(record)
    change_ids = [row.change_id for row in received]
    db.session.execute(
        update(SyncInboxChange)
        .where(SyncInboxChange.change_id.in_(change_ids))
        .values(payload={})
        .execution_options(synchronize_session=False)
    )
    for sender in sorted({row.origin_mission for row in received}):
        db.session.execute(
            update(CaseVersion)
            .where(
                CaseVersion.case_id == case.id,
                CaseVersion.sync_change_id.in_(
                    [row.change_id for row in received if row.origin_mission == sender]
                ),
            )
            .values(changes={"origin_mission": sender, "erased": True})
            .execution_options(synchronize_session=False)
        )
    case.consents.append(
        Consent(uuid=new_uuid(), given=None, sharing=False, withdrawn=True, purposes=[])
    )
    case.version += 1
    db.session.add(
        CaseVersion(
            case=case,
            version=case.version,
            sync_change_id=change_id,
            changes={"origin_mission": origin, "withdrawn": True},
            conflicts=[],
        )
    )
