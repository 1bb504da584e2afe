"""A case as people read it: HTCDS labels for field names and for coded values.

Plain functions for the case pages; no HTTP, no writes. Values are shown only on the case
page itself; lists and the timeline elsewhere show field names, never values.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from server.cases import codes
from server.cases.fields import CHILD_FIELDS, CODE_SOURCES, FIELDS, Field, Kind, Record
from server.cases.htcds_fields import FIELDS as HTCDS

_PREFIX = re.compile(r"^[a-z]+_")
_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
NOT_GIVEN = "–"


@dataclass(frozen=True)
class Row:
    name: str  #: the HTCDS name, e.g. prs_Gender
    label: str
    value: str


def field_label(name: str) -> str:
    """HTCDS's own label where it has one, else the name in words ("Number of children")."""
    if name in HTCDS:
        return HTCDS[name].label
    words = _WORD.sub(" ", _PREFIX.sub("", name))
    return words[:1].upper() + words[1:].lower()


def value_label(field_name: str, value: str) -> str:
    """The HTCDS label of a coded value ("Actual victim of trafficking"), else the value."""
    source = HTCDS.get(CODE_SOURCES.get(field_name, field_name))
    if source is not None:
        for name, label in source.values:
            if name == value:
                return label
    return value


def _spec(name: str) -> Field | None:
    if name in FIELDS:
        return FIELDS[name]
    return next((f[name] for f in CHILD_FIELDS.values() if name in f), None)


def show(name: str, value: object) -> str:
    """One value of field `name` as text."""
    if value is None or value == [] or value == "":
        return NOT_GIVEN
    if isinstance(value, list):
        return ", ".join(show(name, item) for item in value)
    spec = _spec(name)
    kind = spec.kind if spec is not None else None
    if isinstance(value, bool) or kind is Kind.BOOLEAN:
        return "Yes" if value in (True, "true") else "No"
    if kind in (Kind.COUNTRY, Kind.COUNTRIES):
        try:
            return f"{codes.country_name(str(value))} ({value})"
        except codes.InvalidCode:
            return str(value)
    if kind is Kind.LANGUAGE:
        try:
            return codes.language_name(str(value))
        except codes.InvalidCode:
            return str(value)
    if kind in (Kind.CODE, Kind.CODES):
        return value_label(name, str(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def rows(obj: object, specs: list[Field]) -> list[Row]:
    """The fields `specs` of one record as rows; an absent record gives no rows."""
    if obj is None:
        return []
    return [
        Row(s.name, field_label(s.name), show(s.name, getattr(obj, s.attribute))) for s in specs
    ]


def part_fields(part: str) -> list[Field]:
    return [f for f in FIELDS.values() if f.part == part]


def record_fields(record: Record) -> list[Field]:
    return list(CHILD_FIELDS[record].values())
