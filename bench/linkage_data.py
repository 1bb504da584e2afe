"""Synthetic persons for the linkage benchmark: a local register and an incoming batch.

Names come from `bench/caseload_data.py`'s tables per country, grown into a long tail by
splicing two names of the same table ("Kova" + "renko"), weighted by Zipf's law (real
surname frequencies fall off so: the first names are shared by many, the tail by few).
Incoming duplicates are local persons registered again at another mission, years later,
with the corruptions of `corrupt` (typos, transliterations, swapped name order, missing
birth dates, a birth year off by one). Deterministic by seed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field, replace

from bench import caseload_data as data
from sync.linkage import PersonValues
from sync.linkage_names import CYRILLIC_TO_LATIN

#: Countries whose names one mission may write in Cyrillic and another in Latin letters.
CYRILLIC_COUNTRIES = {"UKR", "BLR", "KAZ", "MDA"}
#: Latin to Cyrillic as a clerk might type it (naive; the reverse is ICAO's, so it differs).
_TO_CYRILLIC = (
    ("shch", "щ"), ("zh", "ж"), ("kh", "х"), ("ts", "ц"), ("ch", "ч"), ("sh", "ш"),
    ("ia", "я"), ("iu", "ю"), ("ie", "є"), ("ya", "я"), ("yu", "ю"),
    ("a", "а"), ("b", "б"), ("v", "в"), ("h", "г"), ("g", "г"), ("d", "д"), ("e", "е"),
    ("z", "з"), ("y", "и"), ("i", "і"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"),
    ("o", "о"), ("p", "п"), ("r", "р"), ("s", "с"), ("t", "т"), ("u", "у"), ("f", "ф"),
    ("c", "ц"),
)  # fmt: skip
#: Spelling variants seen between missions writing the same name in Latin letters.
_VARIANTS = (
    ("y", "i"), ("i", "y"), ("ph", "f"), ("ou", "u"), ("u", "ou"), ("k", "kh"), ("kh", "k"),
    ("c", "k"), ("ee", "i"), ("oo", "u"), ("v", "w"), ("ia", "iya"), ("ii", "iy"),
    ("s", "ss"), ("th", "t"), ("ai", "ay"), ("e", "a"), ("o", "a"),
)  # fmt: skip
_KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass
class Pools:
    """Name tables of one country: (names, cumulative Zipf weights)."""

    female: tuple[list[str], list[float]]
    male: tuple[list[str], list[float]]
    family: tuple[list[str], list[float]]


def _latin(name: str) -> str:
    if any("а" <= ch.lower() <= "я" or ch.lower() in CYRILLIC_TO_LATIN for ch in name):
        return "".join(CYRILLIC_TO_LATIN.get(ch.lower(), ch) for ch in name).title()
    return name


def _zipf(names: list[str]) -> tuple[list[str], list[float]]:
    cumulative = list(itertools.accumulate(1 / rank for rank in range(1, len(names) + 1)))
    return names, cumulative


def _grow(rng: random.Random, names: tuple[str, ...], size: int) -> list[str]:
    """The table's names first, then splices of two of them until `size` distinct names."""
    base = [_latin(n) for n in names]
    grown = list(dict.fromkeys(base))
    spliceable = [n for n in base if len(n) >= 4 and " " not in n] or base
    for _ in range(size * 50):
        if len(grown) >= size:
            break
        a, b = rng.choice(spliceable), rng.choice(spliceable)
        cut_a, cut_b = rng.randint(2, len(a) - 1), rng.randint(1, len(b) - 2)
        name = a[:cut_a] + b[cut_b:].lower()
        if 3 <= len(name) <= 14 and name not in grown:
            grown.append(name)
    return grown


def build_pools(seed: int) -> dict[str, Pools]:
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    pools = {}
    for country in data.COUNTRIES:
        pools[country.code] = Pools(
            _zipf(_grow(rng, country.female, 60)),
            _zipf(_grow(rng, country.male, 40)),
            _zipf(_grow(rng, country.family, 200)),
        )
    generic = Pools(
        _zipf(_grow(rng, data.GENERIC_FEMALE, 60)),
        _zipf(_grow(rng, data.GENERIC_MALE, 40)),
        _zipf(_grow(rng, data.GENERIC_FAMILY, 200)),
    )
    for code in data.LONG_TAIL:
        pools[code] = generic
    return pools


@dataclass
class Truth:
    """What the generator knows: which incoming ref duplicates which local ref, and how."""

    duplicates: dict[str, str] = field(default_factory=dict)
    corruptions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    siblings: set[str] = field(default_factory=set)
    #: Duplicates with evidence beyond the name: both birth dates, or the same document or
    #: phone on both records. The rest can at best be `possible` (or a rare name).
    with_evidence: set[str] = field(default_factory=set)
    stats: Counter = field(default_factory=Counter)


class Population:
    """Persons drawn from the caseload's countries, genders and ages."""

    def __init__(self, seed: int = 2008, birthdate_share: float = 0.70):
        self.seed, self.birthdate_share = seed, birthdate_share
        self.pools = build_pools(seed)
        self.countries = [c.code for c in data.COUNTRIES]
        self.country_weights = list(
            itertools.accumulate(c.weight * (1 - data.LONG_TAIL_SHARE) for c in data.COUNTRIES)
        )
        self.ages = [(lo, hi) for lo, hi, _ in data.AGE_BANDS]
        self.age_weights = list(itertools.accumulate(w for *_, w in data.AGE_BANDS))

    def _pick(self, rng: random.Random, table: tuple[list[str], list[float]]) -> str:
        names, cumulative = table
        return rng.choices(names, cum_weights=cumulative)[0]

    def person(self, rng: random.Random, ref: str) -> tuple[PersonValues, str]:
        """One local registration and its country (its true birth date is in the record or
        lost to an age estimate)."""
        if rng.random() < data.LONG_TAIL_SHARE:
            country = rng.choice(data.LONG_TAIL)
        else:
            country = rng.choices(self.countries, cum_weights=self.country_weights)[0]
        pools = self.pools[country]
        female = rng.random() < 0.82
        gender = "feminine" if female else "masculine"
        if rng.random() < 0.003:
            gender = "transgender_feminine"
        firsts = pools.female if female else pools.male
        middle = None
        if country == "VNM" and rng.random() < 0.8:
            middle = "Thị" if female else "Văn"
        elif rng.random() < 0.15:
            middle = self._pick(rng, firsts)
        lo, hi = rng.choices(self.ages, cum_weights=self.age_weights)[0]
        registered = dt.date(2008, 1, 1) + dt.timedelta(days=rng.randrange(17 * 365))
        born = registered - dt.timedelta(days=int((rng.randint(lo, hi) + rng.random()) * 365.25))
        has_id = rng.random() < 0.5
        person = PersonValues(
            ref=ref,
            first_name=self._pick(rng, firsts),
            middle_name=middle,
            second_name=self._pick(rng, pools.family) if rng.random() < 0.95 else None,
            birthdate=born,
            birth_year=born.year,
            gender=gender,
            identity_number=f"{country[:2]}{rng.randrange(10**7, 10**8)}" if has_id else None,
            mobile_phone=f"+{rng.randrange(10**9, 10**10)}" if rng.random() < 0.4 else None,
        )
        return self.recorded(rng, person, country), country

    def recorded(self, rng: random.Random, person: PersonValues, country: str) -> PersonValues:
        """What one mission's record holds of the true person."""
        if rng.random() >= self.birthdate_share:  # no date: the year from an age estimate
            error = rng.choices((0, -1, 1), (70, 15, 15))[0]
            person = replace(person, birthdate=None, birth_year=person.birth_year + error)
        if person.identity_number and rng.random() >= 0.6:
            person = replace(person, identity_number=None)
        if country in CYRILLIC_COUNTRIES and rng.random() < 0.3:
            person = replace(
                person,
                first_name=to_cyrillic(person.first_name),
                second_name=to_cyrillic(person.second_name),
            )
        return person


def to_cyrillic(name: str | None) -> str | None:
    if not name:
        return name
    text = name.lower()
    for latin, cyrillic in _TO_CYRILLIC:
        text = text.replace(latin, cyrillic)
    return text.title()


def typo(rng: random.Random, name: str) -> str:
    """One keyboard slip: a letter replaced, dropped, doubled or two swapped."""
    if len(name) < 3:
        return name
    i = rng.randrange(1, len(name) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return name[:i] + rng.choice(_KEYBOARD) + name[i + 1 :]
    if kind == 1:
        return name[:i] + name[i + 1 :]
    if kind == 2:
        return name[:i] + rng.choice(_KEYBOARD) + name[i:]
    return name[: i - 1] + name[i] + name[i - 1] + name[i + 1 :]


def transliterate(rng: random.Random, name: str | None, country: str) -> str | None:
    """The name as another mission would spell it: the other script, or a variant."""
    if not name:
        return name
    if country in CYRILLIC_COUNTRIES:
        if any("а" <= ch.lower() <= "я" or ch in "іїєґ" for ch in name):
            return _latin(name)
        return to_cyrillic(name)
    lower = name.lower()
    applicable = [(a, b) for a, b in _VARIANTS if a in lower[1:]]
    if not applicable:
        return name
    old, new = rng.choice(applicable)
    i = lower.index(old, 1)
    return name[:i] + new + name[i + len(old) :]


def corrupt(
    rng: random.Random, person: PersonValues, country: str, ref: str
) -> tuple[PersonValues, tuple[str, ...]]:
    """The same person as registered at another mission, and what was changed."""
    changes: list[str] = []
    values = replace(person, ref=ref)
    if rng.random() < 0.35:
        changes.append("typo")
        field_name = "first_name" if rng.random() < 0.5 else "second_name"
        if getattr(values, field_name):
            values = replace(values, **{field_name: typo(rng, getattr(values, field_name))})
        if rng.random() < 0.15:
            values = replace(values, first_name=typo(rng, values.first_name))
    if rng.random() < 0.35:
        changes.append("transliteration")
        values = replace(
            values,
            first_name=transliterate(rng, values.first_name, country),
            second_name=transliterate(rng, values.second_name, country),
        )
    if values.second_name and rng.random() < 0.12:
        changes.append("swapped")
        values = replace(values, first_name=values.second_name, second_name=values.first_name)
    if values.middle_name and rng.random() < 0.3:
        changes.append("middle name")
        values = replace(values, middle_name=None)
    if values.birthdate and rng.random() < 0.2:
        changes.append("no birth date")
        error = rng.choices((0, -1, 1), (60, 20, 20))[0]
        if error:
            changes.append("year off by one")
        values = replace(values, birthdate=None, birth_year=values.birth_year + error)
    elif values.birthdate is None and values.birth_year and rng.random() < 0.3:
        changes.append("year off by one")
        values = replace(values, birth_year=values.birth_year + rng.choice((-1, 1)))
    if values.identity_number and rng.random() < 0.4:
        values = replace(values, identity_number=None)
    if values.mobile_phone and rng.random() < 0.8:  # people change phones between missions
        values = replace(values, mobile_phone=None)
    return values, tuple(changes) or ("none",)


def generate(
    local_count: int = 200_000,
    incoming_count: int = 13_359,
    *,
    duplicate_share: float = 0.25,
    sibling_share: float = 0.02,
    birthdate_share: float = 0.70,
    seed: int = 2008,
) -> tuple[list[PersonValues], list[PersonValues], Truth]:
    """The local register, the incoming batch (shuffled) and the truth.

    `birthdate_share`: records with a full birth date (the caseload's 70%); the others
    have a birth year from an age estimate, a third of them off by one.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    population = Population(seed, birthdate_share)
    local: list[PersonValues] = []
    countries: list[str] = []
    for i in range(local_count):
        person, country = population.person(rng, f"L{i}")
        local.append(person)
        countries.append(country)
    truth = Truth()
    incoming: list[PersonValues] = []
    duplicates = round(incoming_count * duplicate_share)
    siblings = round(incoming_count * sibling_share)
    for position in rng.sample(range(local_count), duplicates):
        ref = f"I{len(incoming)}"
        values, changes = corrupt(rng, local[position], countries[position], ref)
        incoming.append(values)
        truth.duplicates[ref] = local[position].ref
        truth.corruptions[ref] = changes
        truth.stats.update(changes)
        if has_evidence(values, local[position]):
            truth.with_evidence.add(ref)
    for position in rng.sample(range(local_count), siblings):
        ref = f"I{len(incoming)}"
        incoming.append(sibling(rng, population, local[position], countries[position], ref))
        truth.siblings.add(ref)
    while len(incoming) < incoming_count:
        person, _ = population.person(rng, f"I{len(incoming)}")
        incoming.append(person)
    rng.shuffle(incoming)
    truth.stats.update(duplicates=duplicates, siblings=siblings)
    return local, incoming, truth


def has_evidence(a: PersonValues, b: PersonValues) -> bool:
    same = (a.identity_number and a.identity_number == b.identity_number) or (
        a.mobile_phone and a.mobile_phone == b.mobile_phone
    )
    return bool(same or (a.birthdate and b.birthdate))


def sibling(
    rng: random.Random, population: Population, of: PersonValues, country: str, ref: str
) -> PersonValues:
    """A hard non-match: same family name, often the family's phone, born 1-6 years apart."""
    other, _ = population.person(rng, ref)
    born = (of.birthdate or dt.date(of.birth_year or 1990, 6, 15)) + dt.timedelta(
        days=rng.choice((-1, 1)) * rng.randint(365, 6 * 365)
    )
    return replace(
        other,
        second_name=of.second_name,
        birthdate=born if other.birthdate else None,
        birth_year=born.year,
        mobile_phone=of.mobile_phone if rng.random() < 0.3 else other.mobile_phone,
    )
