"""An upsert's payload, read and checked before anything is written (sync.apply).

Only the field table's fields that may travel are read (case, person, victim profile,
child records; never local-only or unknown ones), each value checked as a submitted one
would be, and the change's clocks (sync.clock). A bad value or clock raises
InvalidChange, whose message names fields, never values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from server.cases.fields import CHILD_FIELDS, FIELDS, MULTI_KINDS, Field, Kind, Record
from server.cases.models import Case, Person, VictimProfile
from server.cases.operations import CHILD_MODELS
from server.cases.reading import convert
from sync.clock import BadClock, Received, payload_keys, read_clock
from sync.linkage import PersonEncoding
from sync.linkage_store import received_encoding
from sync.routing import CASE_PARTS
from sync.schemas import UUID_TEXT

PART_MODELS = {"case": Case, "person": Person, "victim": VictimProfile}


class InvalidChange(ValueError):
    """A payload the field table cannot take. The message names fields, never values."""


@dataclass
class Payload:
    """An upsert's payload, checked: values as the models store them."""

    owner_mission: str | None = None
    fields: dict[str, object] = field(default_factory=dict)
    #: (dataset, record uuid, {field name: value})
    records: list[tuple[Record, str, dict[str, object]]] = field(default_factory=list)
    purposes: list[str] = field(default_factory=list)
    #: The person's linkage encoding, if the owner sent one (see sync.linkage_store).
    linkage: PersonEncoding | None = None
    #: The clocks of the change and its fields (sync.clock); empty from an older sender.
    clock: Received = field(default_factory=lambda: read_clock(None))
    #: The field keys it holds values for (sync.clock.payload_keys).
    keys: set[str] = field(default_factory=set)


def read_payload(payload: dict) -> Payload:
    """The fields and records of an upsert that may land here, each value checked."""
    case = payload.get("case")
    if not isinstance(case, dict) or not isinstance(case.get("fields", {}), dict):
        raise InvalidChange("An upsert holds {'case': {'fields': {...}}}.")
    owner = case.get("owner_mission")
    result = Payload(owner_mission=owner if isinstance(owner, str) else None)
    for name, value in case.get("fields", {}).items():
        spec = FIELDS.get(name)
        if _may_land(spec) and spec.part in CASE_PARTS:
            result.fields[name] = check_value(spec, value, PART_MODELS[spec.part])
    records = payload.get("records", [])
    if not isinstance(records, list):
        raise InvalidChange("records: a list.")
    for record in records:
        result.records.append(_read_record(record))
    consent = payload.get("consent") or {}
    purposes = consent.get("purposes", []) if isinstance(consent, dict) else None
    if not isinstance(purposes, list) or not all(isinstance(p, str) for p in purposes):
        raise InvalidChange("consent.purposes: a list of purposes.")
    result.purposes = purposes
    result.linkage = read_linkage(payload.get("linkage"))
    try:
        skew_ms = current_app.config["SYNC_MAX_CLOCK_SKEW_SECONDS"] * 1000
        result.clock = read_clock(payload.get("clock"), max_ahead_ms=skew_ms)
        result.keys = payload_keys(payload)
    except (BadClock, KeyError, TypeError):
        raise InvalidChange("clock: not the clocks of this change.") from None
    return result


def read_linkage(data: object) -> PersonEncoding | None:
    """A received person encoding, its shape and sizes checked."""
    if data is None:
        return None
    try:
        return received_encoding(data)
    except ValueError:
        raise InvalidChange("linkage: not a person encoding.") from None


def _read_record(record: object) -> tuple[Record, str, dict[str, object]]:
    if not isinstance(record, dict) or not isinstance(record.get("fields"), dict):
        raise InvalidChange("A record holds dataset, uuid and fields.")
    try:
        dataset = Record(record.get("dataset"))
    except ValueError:
        raise InvalidChange("A record names an unknown dataset.") from None
    if dataset not in CHILD_MODELS or not UUID_TEXT.regex.match(str(record.get("uuid", ""))):
        raise InvalidChange(f"A {dataset.value} record without a uuid, or of the wrong dataset.")
    model = CHILD_MODELS[dataset][0]
    values = {}
    for name, value in record["fields"].items():
        spec = CHILD_FIELDS[dataset].get(name)
        if _may_land(spec):
            values[name] = check_value(spec, value, model)
    return dataset, record["uuid"], values


def _may_land(spec: Field | None) -> bool:
    """Default deny: a field the table does not know, or one that never travels, is dropped."""
    return spec is not None and not spec.local_only


def check_value(spec: Field, value: object, model: type) -> object:
    """A received value as the models store it, checked as a submitted one would be."""
    if value is None:
        return None
    if spec.kind in MULTI_KINDS:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidChange(f"{spec.name}: a list of codes.")
        raw = " ".join(value)
    elif spec.kind == Kind.BOOLEAN:
        if not isinstance(value, bool):
            raise InvalidChange(f"{spec.name}: true or false.")
        raw = "true" if value else "false"
    elif spec.kind in (Kind.INTEGER, Kind.DECIMAL):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidChange(f"{spec.name}: a number.")
        if spec.kind == Kind.DECIMAL:
            return float(value)
        raw = str(value)
    else:
        if not isinstance(value, str):
            raise InvalidChange(f"{spec.name}: a string.")
        raw = value
    try:
        converted = convert(spec, raw)
    except ValueError:
        raise InvalidChange(f"{spec.name}: not a valid value.") from None
    length = getattr(getattr(model, spec.attribute).type, "length", None)
    if isinstance(converted, str) and length is not None and len(converted) > length:
        raise InvalidChange(f"{spec.name}: longer than {length} characters.")
    return converted
