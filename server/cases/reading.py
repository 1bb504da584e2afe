"""Read a submission's case-schema values, as the form's mapping says, and check each one.

Pure functions over the parsed XML: no database. An invalid value never stops the rest:
it becomes a Problem (field, path, message) and the other values are still read.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache

from lxml import etree

from server.cases import codes
from server.cases.fields import CODE_SOURCES, EXTENSION_CODES, Field, Kind, Record, fields_of
from server.forms.xform import local_name

TRUE = {"true", "1", "yes"}
FALSE = {"false", "0", "no"}
#: "Other" in a country or language list: no ISO code to store; the form keeps the text
#: in its `<field>_other` question, which the submission (and its review) still has.
OTHER = "other"
MISSION_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_\-]{1,15}$")


@dataclass(frozen=True)
class Problem:
    """A value that could not be applied; shown to reviewers. Never logged (it may be personal)."""

    field: str
    path: str
    message: str

    def as_dict(self) -> dict:
        return {"field": self.field, "path": self.path, "message": self.message}


@dataclass
class RecordValues:
    """One entity of the submission: a case, or a record that hangs off it."""

    dataset: Record
    path: str  #: where in the submission, e.g. /data/trafficking_event[2]
    entity_id: str | None
    create: bool
    update: bool
    base_version: int | None
    label: str | None
    values: dict[str, object] = field(default_factory=dict)


@dataclass
class SubmissionValues:
    records: list[RecordValues]
    problems: list[Problem]

    @property
    def case(self) -> RecordValues | None:
        return next((r for r in self.records if r.dataset is Record.CASES), None)

    def children(self) -> list[RecordValues]:
        return [r for r in self.records if r.dataset is not Record.CASES]


@lru_cache(maxsize=4096)
def _any_namespace(relative: str) -> str:
    """An ElementPath for local names in any namespace or none: a/b -> {*}a/{*}b."""
    return "/".join(f"{{*}}{step}" for step in relative.split("/"))


def _child(element: etree._Element, relative: str) -> etree._Element | None:
    """Follow a relative path of local names (submissions may or may not use namespaces)."""
    return element.find(_any_namespace(relative))


def _containers(root: etree._Element, container: str) -> list[etree._Element]:
    """Every element at an absolute instance path (several for a repeat)."""
    steps = container.strip("/").split("/")
    if local_name(root) != steps[0]:
        return []
    found = [root]
    for step in steps[1:]:
        found = [c for e in found for c in e if isinstance(c.tag, str) and local_name(c) == step]
    return found


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def read_submission(root: etree._Element, mapping: dict) -> SubmissionValues:
    """The records a submission describes, with every checked value and every problem."""
    records: list[RecordValues] = []
    problems: list[Problem] = []
    for dataset in mapping["datasets"]:
        record = Record(dataset["dataset"])
        known = fields_of(record)
        entity_relative = dataset["entity"][len(dataset["container"]) + 1 :]
        for index, container in enumerate(_containers(root, dataset["container"]), start=1):
            path = dataset["container"] + (f"[{index}]" if dataset["repeat"] else "")
            entity = _child(container, entity_relative)
            if entity is None:
                continue
            label = _child(entity, "label")
            values = RecordValues(
                dataset=record,
                path=path,
                entity_id=(entity.get("id") or "").strip() or None,
                create=_flag(entity.get("create")),
                update=_flag(entity.get("update")),
                base_version=_int_or_none(entity.get("baseVersion")),
                label=(label.text or "").strip() or None if label is not None else None,
            )
            for mapped in dataset["fields"]:
                element = _child(container, mapped["path"])
                raw = (element.text or "").strip() if element is not None else ""
                if not raw:
                    continue  # not answered (or not relevant): leaves the case as it was
                spec = known[mapped["field"]]
                try:
                    value = convert(spec, raw)
                except ValueError as error:
                    problems.append(Problem(spec.name, f"{path}/{mapped['path']}", str(error)))
                    continue
                if value is not None and value != []:
                    values.values[spec.name] = value
            records.append(values)
    return SubmissionValues(records=records, problems=problems)


def convert(spec: Field, raw: str) -> object:
    """One submitted value as the case schema stores it (None: nothing to store);
    ValueError says what is wrong."""
    kind = spec.kind
    try:
        if kind == Kind.TEXT:
            return raw
        if kind == Kind.CODE:
            return _code(spec.name, raw)
        if kind == Kind.CODES:
            return _unique(_code(spec.name, part) for part in raw.split())
        if kind == Kind.COUNTRY:
            return None if raw.lower() == OTHER else codes.country(raw)
        if kind == Kind.COUNTRIES:
            return _unique(codes.country(p) for p in raw.split() if p.lower() != OTHER)
        if kind == Kind.LANGUAGE:
            return None if raw.lower() == OTHER else codes.language(raw)
    except codes.InvalidCode as error:
        raise ValueError(error.message) from None
    if kind == Kind.DATE:
        try:
            return dt.date.fromisoformat(raw[:10]).isoformat()
        except ValueError:
            raise ValueError(f"'{raw}' is not a date (expected YYYY-MM-DD).") from None
    if kind == Kind.INTEGER:
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"'{raw}' is not a number.") from None
        if not number.is_integer():
            raise ValueError(f"'{raw}' is not a whole number.")
        if not -1_000_000 < number < 1_000_000:
            raise ValueError(f"{raw} is out of range.")
        return int(number)
    if kind == Kind.DECIMAL:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"'{raw}' is not a number.") from None
    if kind == Kind.BOOLEAN:
        lowered = raw.lower()
        if lowered in TRUE:
            return True
        if lowered in FALSE:
            return False
        raise ValueError(f"'{raw}' is not yes/no (expected true or false).")
    if kind == Kind.MISSIONS:
        missions = [part.upper() for part in raw.split()]
        bad = [m for m in missions if not MISSION_CODE.match(m)]
        if bad:
            raise ValueError(f"'{bad[0]}' is not a mission code.")
        return _unique(missions)
    raise AssertionError(f"unhandled kind {kind}")


def _code(name: str, raw: str) -> str:
    if name in EXTENSION_CODES:
        allowed = {_snake(v): v for v in EXTENSION_CODES[name]}
        value = allowed.get(_snake(raw))
        if value is None:
            raise ValueError(f"'{raw}' is not one of {', '.join(EXTENSION_CODES[name])}.")
        return value
    return codes.canonical_value(CODE_SOURCES.get(name, name), raw)


def _snake(value: str) -> str:
    return re.sub(r"[^a-z0-9]", "", value.lower())


def _unique(values) -> list:
    return list(dict.fromkeys(values))
