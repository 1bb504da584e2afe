"""Check coded answers and turn them into the values cases store.

Forms send choice names in snake_case (`possible_victim_of_trafficking`), countries and languages
as ISO codes of either length; cases store the HTCDS value name (`PossibleVictimOfTrafficking`),
ISO 3166-1 alpha-3 (`THA`) and ISO 639 alpha-3 (`khm`). Normalisation calls these for every
answer, so each is one dict lookup in tables built once.
"""

from __future__ import annotations

import functools

import pycountry

from server.cases.htcds import choice_name
from server.cases.htcds_fields import FIELDS

#: ICAO Doc 9303 codes that passports and travel documents use where ISO 3166 has no country.
PASSPORT_CODES: dict[str, str] = {
    "XXA": "Stateless person",
    "XXB": "Refugee (1951 Convention)",
    "XXC": "Refugee (other than under the 1951 Convention)",
    "XXX": "Person of unspecified nationality",
}


class InvalidCode(Exception):
    """A submitted value is not in the field's code list: bad data, not a bug."""

    def __init__(self, field: str | None, raw: str, message: str) -> None:
        super().__init__(message)
        self.field = field  #: the HTCDS field name, when known
        self.raw = raw
        self.message = message


def _shown(raw: str) -> str:
    """The submitted value for a message, cut short: it comes from a device, not from us."""
    return repr(raw if len(raw) <= 40 else raw[:40] + "…")


def _value_index() -> dict[str, dict[str, str]]:
    """Per picklist field: the lower-cased HTCDS name and the choice name -> the HTCDS name."""
    index: dict[str, dict[str, str]] = {}
    for field in FIELDS.values():
        if field.values:
            index[field.name] = {}
            for name, _label in field.values:
                index[field.name][name.lower()] = name
                index[field.name][choice_name(name)] = name
    return index


_VALUES = _value_index()


def field_values(field_name: str) -> tuple[tuple[str, str], ...]:
    """(value name, label) pairs of an HTCDS picklist, in HTCDS order; () for other fields."""
    return FIELDS[field_name].values


def canonical_value(field_name: str, raw: str) -> str:
    """The HTCDS value name for one submitted choice (one item of a select_multiple).

    Accepts the choice name (`follow_up`) or the HTCDS name in any case (`FollowUp`); country
    and language fields go to `country` and `language`. An unknown field name is a KeyError,
    a field without a code list a ValueError: both are bugs in the caller.
    """
    field = FIELDS[field_name]
    if field.kind in ("country", "multi_country"):
        return country(raw, field=field_name)
    if field.kind == "language":
        return language(raw, field=field_name)
    index = _VALUES.get(field_name)
    if index is None:
        raise ValueError(f"{field_name} is a {field.kind} field, not a picklist")
    value = index.get(raw.strip().lower())
    if value is None:
        expected = ", ".join(choice_name(name) for name, _label in field.values)
        raise InvalidCode(
            field_name,
            raw,
            f"{_shown(raw)} is not a value of {field.label} ({field_name}); "
            f"expected one of: {expected}",
        )
    return value


@functools.cache
def _countries() -> dict[str, str]:
    """Lower-cased alpha-2 and alpha-3 codes -> alpha-3."""
    index = {code.lower(): code for code in PASSPORT_CODES}
    for entry in pycountry.countries:
        index[entry.alpha_2.lower()] = entry.alpha_3
        index[entry.alpha_3.lower()] = entry.alpha_3
    return index


@functools.cache
def _country_names() -> dict[str, str]:
    return {**{entry.alpha_3: entry.name for entry in pycountry.countries}, **PASSPORT_CODES}


def country(raw: str, *, field: str | None = None) -> str:
    """ISO 3166-1 alpha-3 for an alpha-2 or alpha-3 code in any case, or an ICAO XXA–XXX code."""
    code = _countries().get(raw.strip().lower())
    if code is None:
        raise InvalidCode(
            field,
            raw,
            f"{_shown(raw)} is not an ISO 3166-1 country code: use alpha-3 (THA) or alpha-2 (TH),"
            " or XXA for a stateless person",
        )
    return code


def country_choices() -> list[tuple[str, str]]:
    """(alpha-3, name) of every country code cases may hold, by name: for filters."""
    return sorted(_country_names().items(), key=lambda item: item[1])


def country_name(code: str) -> str:
    """The ISO 3166 short name ("Thailand") for any code `country` accepts."""
    return _country_names()[country(code)]


@functools.cache
def _languages() -> dict[str, str]:
    """Lower-cased ISO 639-1, 639-2/B and alpha-3 codes -> alpha-3.

    pycountry's alpha-3 is ISO 639-3, which includes every ISO 639-2/T individual language and
    macrolanguage; ISO 639-5 adds the 639-2 collective codes forms use (`kar`, `sgn`).
    """
    index = {entry.alpha_3: entry.alpha_3 for entry in pycountry.language_families}
    for entry in pycountry.languages:
        index[entry.alpha_3] = entry.alpha_3
        for other in ("alpha_2", "bibliographic"):
            if hasattr(entry, other):
                index[getattr(entry, other)] = entry.alpha_3
    return index


@functools.cache
def _language_names() -> dict[str, str]:
    return {
        entry.alpha_3: entry.name
        for entries in (pycountry.language_families, pycountry.languages)
        for entry in entries
    }


def language(raw: str, *, field: str | None = None) -> str:
    """ISO 639-2/T alpha-3 (`khm`) for a two- or three-letter ISO 639 code (`km`, `fre`)."""
    code = _languages().get(raw.strip().lower())
    if code is None:
        raise InvalidCode(
            field,
            raw,
            f"{_shown(raw)} is not an ISO 639 language code: use alpha-3 (khm) or alpha-2 (km)",
        )
    return code


def language_name(code: str) -> str:
    """The ISO 639 English name ("Khmer") for any code `language` accepts."""
    return _language_names()[language(code)]
