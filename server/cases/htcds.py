"""The shape of one HTCDS 2.0 field; the fields themselves are generated into htcds_fields.py.

HTCDS: Human Trafficking Case Data Standard, IOM, CC BY 4.0. Kept apart from the generated data
so the generator can use `choice_name` before htcds_fields.py exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

#: How a field's value is checked. `country`/`language` are the HTCDS picklists that say "use ISO
#: 3166" / "use ISO 639-2" instead of listing values; `lookup` refers to another record.
Kind = Literal[
    "text",
    "long_text",
    "picklist",
    "multi_picklist",
    "date",
    "number",
    "checkbox",
    "geolocation",
    "lookup",
    "country",
    "multi_country",
    "language",
]
KINDS: tuple[str, ...] = get_args(Kind)
CODED_KINDS = frozenset({"picklist", "multi_picklist", "country", "multi_country", "language"})


@dataclass(frozen=True)
class HtcdsField:
    name: str  #: with the table prefix, as HTCDS writes it: "prs_Gender"
    section: str  #: the CSV's section heading: "Person - Victim Context"
    label: str
    type: str  #: the Field Type as HTCDS writes it: "Picklist", "Lookup [to organisation]"
    core: bool
    status: str  #: "DRAFT" or "DEPRECATED"
    kind: Kind
    values: tuple[tuple[str, str], ...] = ()  #: (value name, value label) of a picklist

    @property
    def deprecated(self) -> bool:
        return self.status == "DEPRECATED"


# A word starts at an upper-case letter after a lower-case letter or digit ("victimOf"), or at
# the last capital of a run that precedes a lower-case letter ("AVictim" -> "A", "Victim").
_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def choice_name(value_name: str) -> str:
    """The XLSForm choice name for an HTCDS value name, as CaseBridge's forms spell it.

    PossibleVictimOfTrafficking -> possible_victim_of_trafficking,
    A_AgricultureForestryAndFishing -> a_agriculture_forestry_and_fishing, NGO -> ngo.
    """
    return _WORD_START.sub("_", value_name).lower()
