"""Privacy-preserving record linkage: is an incoming person one this mission already has?

Before a record from a peer becomes a new case, its person's `PersonEncoding` (see
`sync.linkage_encoding`: keyed tokens and Bloom filters, never names) is matched against
an index of the local persons' encodings (`sync.linkage_index`):

- **Candidates**: every local person sharing an exact token (document number, phones,
  e-mail, birth date, name + birth date), whatever the blocks say; and the persons in the
  shared blocks (birth-year bucket with a name code; the name-code pair when a year is
  missing) whose names are `NAME_REVIEW` alike, unless more than `MAX_NAME_ONLY` are: a
  name that common decides nothing on its own, except among the few of the same home.
  Persons are grouped by their name filters, so a name shared by many is compared once
  per incoming person.
- **Name similarity**: the Dice coefficient of the Bloom filters, the best of names as
  given, first and family swapped, and all names in any order.
- **Decision**, explicit rules rather than fitted weights (thresholds measured with
  `bench/linkage.py`, see bench/LINKAGE.md): `certain` needs a name that agrees and an
  independent exact agreement (document number, full birth date, or a phone or e-mail
  with no date conflict), or the same document number and birth date whatever the names
  (two exact identifiers: an alias or a wrong entry), or a document number one typo apart
  (keyed deletion neighbourhoods) with names that agree and birth years not far apart;
  or, with no exact agreement, a rare name (Fellegi and Sunter's frequency idea, counted
  from the local index and never sent: at most two local persons, of any birth year,
  have a name as alike) with the same birth year or one apart, no other home locality
  and no rival; or the same home locality with the same birth year where no other person
  of that place has the name. With the same birth date a less alike name is enough when
  its differing words are spellings no local person has (typos and transliterations make
  new spellings; another real name, such as a sibling's, is a known one: Winkler's
  value-frequency idea applied to filters); with a rare name, the same home, or a
  family's phone, differing words must be such new spellings. A name that agrees with
  nothing against it, or a name that agrees a little with an exact agreement, is
  `possible` (the review queue); two different documents (not one typo apart), two
  different birth dates or two genders rule `certain` out; a different home locality
  does not (families move), it only does not count, except against a name alone, or a
  name so common here that a birth date is shared by chance (`COMMON_NAME`).
- **Likelihood**, where no rule is certain (`sync.linkage_weights`): the Fellegi–Sunter
  posterior of each candidate from how often its name, birth year (or date) and home are
  had in the register, against every other candidate and a new person; `certain` from
  `POSTERIOR_CERTAIN` (reason "likelihood"). Counted here, never sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from sync.linkage_compare import dice, home_place, name_similarity, shares_contact
from sync.linkage_encoding import (  # re-exported: the module callers import
    BLOOM_BITS,
    BLOOM_HASHES,
    Encoder,
    PersonEncoding,
    PersonValues,
)
from sync.linkage_index import (  # re-exported too
    NAME_REVIEW,
    NAME_SIMILAR,
    LocalIndex,
    exact_tokens,
)
from sync.linkage_weights import POSTERIOR_CERTAIN, posteriors

__all__ = [
    "BLOOM_BITS",
    "BLOOM_HASHES",
    "NAME_SIMILAR",
    "Encoder",
    "LocalIndex",
    "Match",
    "PersonEncoding",
    "PersonValues",
    "exact_tokens",
    "match",
    "match_exact",
]

NAME_WITH_DOCUMENT = 0.50  #: the same document number, names at least half alike
NAME_WITH_BIRTHDATE = 0.85  #: the same birth date (or phone), names alike despite a typo
#: The same birth date, names less alike, but each differing name of the incoming person
#: is a spelling no local person has (a typo or a transliteration, not another real name)
#: and still at least NAME_FIELD_FLOOR alike: Winkler's value-frequency idea, on filters.
NAME_NOVEL_WITH_BIRTHDATE = 0.65
NAME_FIELD_FLOOR = 0.50
FIELD_AGREES = 0.95  #: a first or family name this alike counts as the same spelling
NAME_POSSIBLE = 0.60  #: least name likeness for a possible match with a date or document
#: Rare enough for the home rule to allow a birth year one apart: at most this many local
#: persons have exactly this full-name filter.
RARE_NAME_COUNT = 2
#: With nothing but a name and a birth year (one apart at most), the name decides only if
#: at most this many local persons have one NAME_SIMILAR alike (see bench/LINKAGE.md).
MAX_NAMESAKES = 2
#: So many local persons have a name (NAME_SIMILAR alike) that one of them shares a birth
#: date by chance (one in ~50 for a date in a span of 40 years): with the same date and
#: a different home locality, only possible (see bench/LINKAGE.md).
COMMON_NAME = 300
#: Another candidate this alike makes a name-only decision ambiguous.
RIVAL_NAME = 0.85
#: The same home locality (or postal code), the same birth year (one apart or one unknown
#: for a rare name), nothing against, each differing name a new spelling, nobody else of
#: that place with that name, no rival candidate: names at least this alike (as much as a
#: name needs to be a candidate at all; see bench/LINKAGE.md).
NAME_WITH_HOME = 0.80
#: Possible matches reported per incoming person, best first (the review queue shows them).
MAX_POSSIBLE = 3

Status = Literal["certain", "possible"]


@dataclass(frozen=True)
class Match:
    incoming: str  #: the incoming encoding's ref
    local: str  #: the local person's ref
    status: Status
    score: float  #: for ranking: name similarity plus evidence, higher is surer
    name: float  #: name similarity (Dice of Bloom filters, best of straight/swapped/full)
    reason: str  #: what decided it: "document", "birthdate", "phone", "home", "likelihood"...


def compare(
    incoming: PersonEncoding, local: PersonEncoding, index: LocalIndex, name: float | None = None
) -> Match | None:
    """The decision for one pair: certain, possible, or None."""
    if name is None:
        name = name_similarity(incoming, local)
    decided = _decide(incoming, local, name, index)
    if decided is None:
        return None
    score, status, reason = decided
    return Match(incoming.ref, local.ref, status, round(score, 4), round(name, 4), reason)


def _decide(
    incoming: PersonEncoding, local: PersonEncoding, name: float, index: LocalIndex
) -> tuple[float, Status, str] | None:
    """(score, status, reason) for one pair, or None: the rules of the module docstring."""
    same_document = incoming.document is not None and incoming.document == local.document
    if name < NAME_POSSIBLE and not same_document:
        return None
    both_documents = incoming.document is not None and local.document is not None
    near_document = (
        both_documents
        and not same_document
        and not incoming.document_edits.isdisjoint(local.document_edits)
    )  # one typo apart: not "two documents"
    other_document = both_documents and not same_document and not near_document
    same_phone = shares_contact(incoming, local)
    same_mobile = incoming.phone is not None and incoming.phone == local.phone
    both_dates = incoming.birthdate is not None and local.birthdate is not None
    same_date = both_dates and incoming.birthdate == local.birthdate
    if incoming.birth_year is None or local.birth_year is None:
        year = "unknown"
    elif incoming.birth_year == local.birth_year:
        year = "same"
    else:
        year = "near" if incoming.birth_year in local.near_years else "far"
    gender_differs = (
        incoming.gender is not None and local.gender is not None and incoming.gender != local.gender
    )
    conflict = other_document or gender_differs or (both_dates and not same_date)
    home = home_place(incoming, local)
    same_home = home == "same"
    if same_document and (name >= NAME_WITH_DOCUMENT or (same_date and not gender_differs)):
        status, reason = "certain", "document"  # two exact identifiers: whatever the name
    elif (
        same_date
        and not conflict
        and (
            name >= NAME_WITH_BIRTHDATE
            or (name >= NAME_NOVEL_WITH_BIRTHDATE and _novel_spelling(incoming, local, index))
        )
        and (home != "other" or near_document or index.namesakes(incoming) <= COMMON_NAME)
    ):  # a name this common shares a birth date by chance; a home elsewhere tips it
        status, reason = "certain", "birthdate"
    elif near_document and name >= NAME_WITH_BIRTHDATE and not conflict and year != "far":
        status, reason = "certain", "document typo"
    elif (
        same_phone
        and name >= NAME_WITH_BIRTHDATE
        and not conflict
        and year != "far"
        and (same_mobile or _novel_spelling(incoming, local, index))
    ):  # a family shares a phone: names must agree; a family's home phone or e-mail (or a
        # mobile against it) also a new spelling where they differ (a sibling's is known)
        status, reason = "certain", "phone"
    elif (
        same_home
        and name >= NAME_WITH_HOME
        and not conflict
        and (year == "same" or (year != "far" and _rare(local, index)))
        and _novel_spelling(incoming, local, index)
        and _only_one_at_home(local, index)
    ):
        status, reason = "certain", "home"  # a family shares a home: no rival (match_one)
    elif (
        name >= NAME_WITH_BIRTHDATE
        and year in ("same", "near")
        and not conflict
        and home != "other"
        and _novel_spelling(incoming, local, index)
        and index.namesakes(incoming) <= MAX_NAMESAKES
    ):  # a rare name (or its typo: no local person spells its differing words so)
        status, reason = "certain", "rare name"
    elif same_document or near_document or same_date:
        reason = "birthdate" if same_date else "document"
        status, reason = "possible", "document typo" if near_document else reason
    elif name >= NAME_REVIEW and not conflict and year != "far":
        status, reason = "possible", "name"
    else:
        return None
    evidence = (
        0.5 * same_document
        + 0.3 * near_document
        + 0.3 * same_date
        + 0.2 * same_phone
        + 0.1 * (year == "same")
        + 0.1 * same_home
    )
    return name + evidence, status, reason


def _rare(local: PersonEncoding, index: LocalIndex) -> bool:
    return index.name_counts.get(local.full, 0) <= RARE_NAME_COUNT


def _only_one_at_home(local: PersonEncoding, index: LocalIndex) -> bool:
    """Whether no other local person of the same locality (or postal code) has this name:
    where namesakes live, one more of another year is likely (see bench/LINKAGE.md)."""
    name_id = index.name_ids.get((local.first, local.family, local.full))
    return all(
        len(index.by_name_home.get((name_id, home), ())) <= 1
        for home in (local.city, local.postcode)
        if home is not None
    )


def _novel_spelling(incoming: PersonEncoding, local: PersonEncoding, index: LocalIndex) -> bool:
    """Whether each of the incoming names that differs from the local person's (in the
    better order) is a spelling no local person has, and none differs beyond recognition."""
    if not (incoming.first and incoming.family and local.first and local.family):
        return False
    straight = ((incoming.first, local.first), (incoming.family, local.family))
    swapped = ((incoming.first, local.family), (incoming.family, local.first))
    pairs = max(straight, swapped, key=lambda ps: sum(dice(a, b) for a, b in ps))
    for mine, theirs in pairs:
        alike = dice(mine, theirs)
        if alike < NAME_FIELD_FLOOR:
            return False
        if alike < FIELD_AGREES and mine in index.known_spellings:
            return False
    return True


def match_one(incoming: PersonEncoding, index: LocalIndex) -> list[Match]:
    """One incoming person's outcome: its one certain match, else its best possible ones.

    A name-only certainty (rare name) with another candidate nearly as alike is only
    possible: the name does not single the person out.
    """
    candidates = index.candidates(incoming)
    encodings = index.encodings
    found = []
    for position, name in candidates.items():
        decided = _decide(incoming, encodings[position], name, index)
        if decided is not None:
            found.append((*decided, name, position))
    if not found:
        return []
    found.sort(key=lambda row: row[0], reverse=True)
    certain = [row for row in found if row[1] == "certain"]
    if certain and (
        certain[0][2] not in NEEDS_NO_RIVAL or _alone(incoming, certain[0][3], candidates, index)
    ):
        chosen, status = certain[:1], "certain"
    elif likely := _likeliest(incoming, candidates, index, found):
        chosen, status = [likely], "certain"
    else:
        chosen, status = found[:MAX_POSSIBLE], "possible"
    return [
        Match(incoming.ref, encodings[p].ref, status, round(score, 4), round(name, 4), reason)
        for score, _, reason, name, p in chosen
    ]


def _likeliest(
    incoming: PersonEncoding, candidates: dict[int, float], index: LocalIndex, found: list
) -> tuple | None:
    """The row of `found` to link by likelihood (`sync.linkage_weights`): the candidate
    whose posterior, against every other candidate and a new person, is POSTERIOR_CERTAIN."""
    posterior = posteriors(incoming, candidates, index, _novel_spelling)
    if not posterior:
        return None
    position, value = max(posterior.items(), key=lambda item: item[1])
    if value < POSTERIOR_CERTAIN:
        return None
    row = next(row for row in found if row[4] == position)
    return (row[0], "certain", "likelihood", row[3], position)


#: Certain by these reasons only if no other candidate's name is as alike (or RIVAL_NAME).
NEEDS_NO_RIVAL = ("rare name", "home")


def _alone(
    incoming: PersonEncoding, name: float, candidates: dict[int, float], index: LocalIndex
) -> bool:
    """Whether the chosen candidate is the only one whose name is this alike (or
    RIVAL_NAME), not counting those known to live elsewhere."""
    level = min(name, RIVAL_NAME)
    rivals = [p for p, n in candidates.items() if n >= level]
    if len(rivals) > 1:
        rivals = [p for p in rivals if home_place(incoming, index.encodings[p]) != "other"]
    return len(rivals) <= 1


def match(incoming: Iterable[PersonEncoding], index: LocalIndex) -> list[Match]:
    """Certain and possible matches of incoming encodings against the local index."""
    return [m for encoding in incoming for m in match_one(encoding, index)]


def match_exact(incoming: Iterable[PersonEncoding], index: LocalIndex) -> list[Match]:
    """The baseline: exact keyed tokens only (document number, or name + birth date)."""
    results = []
    for encoding in incoming:
        keys = [t for t in (encoding.document, encoding.name_dob) if t is not None]
        for position in sorted({p for key in keys for p in index.exact.get(key, ())}):
            local = index.encodings[position]
            results.append(Match(encoding.ref, local.ref, "certain", 1.0, 1.0, "exact"))
    return results
