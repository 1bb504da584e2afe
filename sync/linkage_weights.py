"""Fellegi–Sunter odds for what the rules cannot weigh: a name, a birth year and a home.

With no identifier in common, whether an incoming person is a local one depends on how
often such a name, such a birth year and such a home locality are had here: the rules'
thresholds cannot say it, a likelihood ratio can (Fellegi and Sunter 1969, with the
frequency-based u-probabilities of their section 3.3.2). For each candidate, the odds that
it is the incoming person are

    PRIOR_DUPLICATE × m / λ,   λ = (others with such a name + NAME_UNSEEN) × u_year × u_home

λ is how many local persons would show that agreement by chance: the local persons whose
names are as alike (`LocalIndex.name_frequencies`), times the share of local persons born
that year (or one apart; for the same birth date, one day of that year's), times the
share living in that locality (or postal code); m is
how often a duplicate's records agree so. Every count is made by the receiving mission in
its own register; nothing more travels. The posterior of a candidate is its odds over one
plus the odds of all candidates (the incoming person is at most one of them, or new):
`certain` from `POSTERIOR_CERTAIN`. A name that differs by another real spelling (a
sibling's first name) weighs a tenth; two genders, two birth dates, two documents or birth
years further apart rule a candidate out.
"""

from __future__ import annotations

from sync.linkage_compare import home_place
from sync.linkage_encoding import PersonEncoding
from sync.linkage_index import NAME_REVIEW, NAME_SIMILAR, LocalIndex

#: Share of incoming persons registered here before (the benchmark's 25%; with fewer,
#: as many links need a lower POSTERIOR_CERTAIN... or fewer are made).
PRIOR_DUPLICATE = 0.25
#: A name no other local person has could still be someone's: half a person more.
NAME_UNSEEN = 0.5
#: Names at least this alike count as one for the chance agreement (a typo's distance).
NAME_LEVEL_CAP = 0.95
#: m: a duplicate's birth years agree (0.7) or are one apart (0.3) where a record holds
#: only a year from an age estimate; its localities agree where both hold one (0.75: the
#: family moved, 10%, or the locality is spelled otherwise, 15%).
M_YEAR_SAME, M_YEAR_NEAR = 0.7, 0.3
M_HOME_SAME, M_HOME_OTHER = 0.75, 0.25
#: A name less alike than NAME_SIMILAR agrees half as often; one whose differing word is a
#: spelling some local person has (another real name) a tenth as often.
M_NAME_LOOSE, M_NAME_KNOWN = 0.5, 0.1
#: Names tell the country: a namesake is a compatriot, and a locality's share among a
#: country's persons is its share of the register divided by the country's (about a tenth
#: in a register of many countries; measured: bench/LINKAGE.md, session 7).
PLACE_CONCENTRATION = 10.0
#: With the same birth date, names this alike are weighed (the rules' possible floor).
NAME_WITH_DATE = 0.80
DAYS = 365.25
#: Counts in a register smaller than this are not frequencies: among a few persons every
#: name, year and place is rare, and the rules alone decide.
MIN_REGISTER = 1000
#: The posterior from which a candidate is linked without a human (bench/LINKAGE.md).
POSTERIOR_CERTAIN = 0.95


def posteriors(
    incoming: PersonEncoding, candidates: dict[int, float], index: LocalIndex, novel
) -> dict[int, float]:
    """Position -> posterior that the incoming person is that candidate, for the candidates
    not ruled out; empty where the index does not hold the whole register (its counts would
    not be frequencies) or holds fewer than MIN_REGISTER persons.
    `novel(incoming, local, index)`: whether differing names are new spellings."""
    if not index.complete or not index.dated or len(index.encodings) < MIN_REGISTER:
        return {}
    odds = {}
    for position, name in candidates.items():
        value = _odds(incoming, index.encodings[position], name, index, novel)
        if value:
            odds[position] = value
    total = 1 + sum(odds.values())
    return {position: value / total for position, value in odds.items()}


def _odds(
    incoming: PersonEncoding, local: PersonEncoding, name: float, index: LocalIndex, novel
) -> float:
    same_date = incoming.birthdate is not None and incoming.birthdate == local.birthdate
    if name < (NAME_WITH_DATE if same_date else NAME_REVIEW) or _conflict(incoming, local):
        return 0.0
    if same_date:  # a duplicate keeps its birth date; one day of the year's
        year = index.year_counts.get(incoming.birth_year, 0) / index.dated
        m_year, u_year = 1.0, year / DAYS
    elif incoming.birth_year is None or local.birth_year is None:
        m_year, u_year = 1.0, 1.0
    elif incoming.birth_year == local.birth_year:
        m_year, u_year = M_YEAR_SAME, index.year_counts.get(incoming.birth_year, 0) / index.dated
    elif incoming.birth_year in local.near_years:
        near = sum(index.year_counts.get(year, 0) for year in incoming.near_years)
        m_year, u_year = M_YEAR_NEAR, near / index.dated
    else:
        return 0.0
    home = home_place(incoming, local)
    m_home, u_home = 1.0, 1.0
    if home == "same":
        shares = [
            index.place_counts.get(token, 0) / len(index.encodings)
            for token in (incoming.city, incoming.postcode)
            if token is not None and token in (local.city, local.postcode)
        ]
        m_home, u_home = M_HOME_SAME, min(1.0, PLACE_CONCENTRATION * min(shares, default=1.0))
    elif home == "other":
        m_home = M_HOME_OTHER
    m_name = 1.0 if name >= NAME_SIMILAR else M_NAME_LOOSE
    if name < NAME_LEVEL_CAP and not novel(incoming, local, index):
        m_name *= M_NAME_KNOWN
    level = min(name, NAME_LEVEL_CAP) - 1e-9
    alike = index.namesakes(incoming, level) if incoming.name_pair is not None else 0
    chance = (max(alike - 1, 0) + NAME_UNSEEN) * u_year * u_home
    return PRIOR_DUPLICATE * m_year * m_home * m_name / max(chance, 1e-12)


def _conflict(incoming: PersonEncoding, local: PersonEncoding) -> bool:
    """Two genders, two birth dates, or two documents not one typo apart."""
    gender = incoming.gender is not None and local.gender is not None
    dates = incoming.birthdate is not None and local.birthdate is not None
    documents = incoming.document is not None and local.document is not None
    return (
        (gender and incoming.gender != local.gender)
        or (dates and incoming.birthdate != local.birthdate)
        or (
            documents
            and incoming.document != local.document
            and incoming.document_edits.isdisjoint(local.document_edits)
        )
    )
