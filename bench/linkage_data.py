"""Synthetic persons for the linkage benchmark: a local register and an incoming batch.

Names come from `bench/caseload_data.py`'s tables per country, grown into a long tail by
splicing two names of the same table ("Kova" + "renko"), weighted by Zipf's law (real
surname frequencies fall off so: the first names are shared by many, the tail by few).
Incoming duplicates are local persons registered again at another mission, years later,
with the corruptions of `corrupt` (typos, transliterations, swapped name order, missing
birth dates, a birth year off by one). Each true person has a home (`Home`: the origin
locality, its province, postal code, the family's phone, an e-mail address), of which
each record holds a share (`HOME_SHARES`); a duplicate's family may have moved, or its
locality be spelled differently; a sibling shares the family's home. The home is drawn
from a second random stream, so names, dates, documents and phones are the same as
without it. Deterministic by seed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field, replace

from bench import caseload_data as data
from sync.linkage import PersonValues
from sync.linkage_encoding import gender_class
from sync.linkage_names import CYRILLIC_TO_LATIN, name_tokens

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

#: Share of records holding each part of the person's home (origin) address. The locality
#: (village, town or district, with its province) is what missions ask for family tracing
#: and return, so most records hold it, mostly with its province; rural origin areas
#: seldom use postal codes; a family or landline phone, and an e-mail address, are rarer
#: still. (Streets are not generated: linkage does not encode them.)
HOME_SHARES = {
    "city": 0.80,
    "state": 0.85,  # of the records with a city
    "postcode": 0.20,
    "home_phone": 0.25,
    "email": 0.05,
}
MOVED = 0.10  #: duplicates whose family lives elsewhere now (another home, same phone 50%)
CITY_RESPELLED = 0.15  #: duplicates whose locality another mission spells differently
LOCALITIES = 150  #: origin localities per country, Zipf-weighted (source areas cluster)
STATES = 12  #: provinces per country


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


@dataclass(frozen=True)
class Home:
    """A person's true home: their family's, shared with siblings."""

    city: str
    state: str
    postcode: str
    home_phone: str
    email: str | None


@dataclass
class Places:
    """Localities of one country: (city, state, postcode) and their Zipf weights."""

    localities: list[tuple[str, str, str]]
    cumulative: list[float]


def build_places(seed: int) -> dict[str, Places]:
    """Per country: localities spliced from its family names (place names are so often
    family names), each in one of `STATES` provinces, with a postal code."""
    rng = random.Random(seed + 1)  # noqa: S311 - reproducible data, not secrets
    places = {}
    codes = [c.code for c in data.COUNTRIES] + list(data.LONG_TAIL)
    by_code = {c.code: c for c in data.COUNTRIES}
    for code in codes:
        country = by_code.get(code)
        family = country.family if country else data.GENERIC_FAMILY
        cities = country.cities if country else data.GENERIC_CITIES
        names = _grow(rng, tuple(cities) + family, LOCALITIES + STATES)
        states = names[LOCALITIES:]
        localities = [
            (name, rng.choice(states), f"{rng.randrange(10**4, 10**5)}")
            for name in names[:LOCALITIES]
        ]
        places[code] = Places(
            localities,
            list(itertools.accumulate(1 / rank for rank in range(1, LOCALITIES + 1))),
        )
    return places


@dataclass
class Truth:
    """What the generator knows: which incoming ref duplicates which local ref, and how."""

    duplicates: dict[str, str] = field(default_factory=dict)
    corruptions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    siblings: set[str] = field(default_factory=set)
    #: Duplicates with evidence beyond the name: both birth dates, or the same document or
    #: phone on both records. The rest can at best be `possible` (or a rare name).
    with_evidence: set[str] = field(default_factory=set)
    #: Duplicates whose two records hold the same home locality, postal code, home phone
    #: or e-mail (as written, before normalization).
    with_home: set[str] = field(default_factory=set)
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
        self.places = build_places(seed)
        #: Homes are drawn from their own stream: the other values stay as they were.
        self.home_rng = random.Random(seed + 2)  # noqa: S311 - reproducible data

    def home(self, person: PersonValues, country: str) -> Home:
        """A family home in the person's country."""
        rng, places = self.home_rng, self.places[country]
        city, state, postcode = rng.choices(places.localities, cum_weights=places.cumulative)[0]
        email = None
        if rng.random() < 0.15:
            first = (person.first_name or "x").lower().replace(" ", "")
            email = f"{_latin(first).lower()}{rng.randrange(1, 1000)}@mail.example"
        return Home(
            city=city,
            state=state,
            postcode=postcode,
            home_phone=f"+{rng.randrange(10**9, 10**10)}",
            email=email,
        )

    def with_home(self, person: PersonValues, home: Home) -> PersonValues:
        """What one record holds of the home (`HOME_SHARES`), in the record's script."""
        rng = self.home_rng
        cyrillic = any("а" <= ch.lower() <= "я" for ch in person.first_name or "")
        written = to_cyrillic if cyrillic else (lambda name: name)
        has_city = rng.random() < HOME_SHARES["city"]
        has_state = has_city and rng.random() < HOME_SHARES["state"]
        has_postcode = rng.random() < HOME_SHARES["postcode"]
        has_phone = rng.random() < HOME_SHARES["home_phone"]
        has_email = home.email is not None and rng.random() < HOME_SHARES["email"] / 0.15
        return replace(
            person,
            mailing_city=written(home.city) if has_city else None,
            mailing_state=written(home.state) if has_state else None,
            mailing_postal_code=home.postcode if has_postcode else None,
            home_phone=home.home_phone if has_phone else None,
            email=home.email if has_email else None,
        )

    def moved_or_respelled(
        self, home: Home, person: PersonValues, country: str
    ) -> tuple[Home, tuple[str, ...]]:
        """The home as the duplicate's mission hears of it, and what differs."""
        rng, changes = self.home_rng, []
        if rng.random() < MOVED:
            changes.append("moved")
            new = self.home(person, country)
            phone = home.home_phone if rng.random() < 0.5 else new.home_phone
            home = replace(new, home_phone=phone, email=home.email)
        if rng.random() < CITY_RESPELLED:
            changes.append("locality respelled")
            if rng.random() < 0.5:
                home = replace(home, city=typo(rng, home.city))
            else:
                home = replace(home, city=transliterate(rng, home.city, "other"))
        return home, tuple(changes)

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
    homes: list[Home] = []
    for i in range(local_count):
        person, country = population.person(rng, f"L{i}")
        home = population.home(person, country)
        local.append(population.with_home(person, home))
        countries.append(country)
        homes.append(home)
    truth = Truth()
    incoming: list[PersonValues] = []
    duplicates = round(incoming_count * duplicate_share)
    siblings = round(incoming_count * sibling_share)
    for position in rng.sample(range(local_count), duplicates):
        ref = f"I{len(incoming)}"
        values, changes = corrupt(rng, local[position], countries[position], ref)
        home, home_changes = population.moved_or_respelled(
            homes[position], values, countries[position]
        )
        values = population.with_home(values, home)
        incoming.append(values)
        truth.duplicates[ref] = local[position].ref
        truth.corruptions[ref] = changes
        truth.stats.update(changes + home_changes)
        if has_evidence(values, local[position]):
            truth.with_evidence.add(ref)
        if shares_home(values, local[position]):
            truth.with_home.add(ref)
    for position in rng.sample(range(local_count), siblings):
        ref = f"I{len(incoming)}"
        brother_or_sister = sibling(rng, population, local[position], countries[position], ref)
        incoming.append(population.with_home(brother_or_sister, homes[position]))
        truth.siblings.add(ref)
    while len(incoming) < incoming_count:
        person, country = population.person(rng, f"I{len(incoming)}")
        incoming.append(population.with_home(person, population.home(person, country)))
    rng.shuffle(incoming)
    truth.stats.update(duplicates=duplicates, siblings=siblings)
    return local, incoming, truth


def has_evidence(a: PersonValues, b: PersonValues) -> bool:
    same = (a.identity_number and a.identity_number == b.identity_number) or (
        a.mobile_phone and a.mobile_phone == b.mobile_phone
    )
    return bool(same or (a.birthdate and b.birthdate))


def shares_home(a: PersonValues, b: PersonValues) -> bool:
    pairs = (
        (a.mailing_city, b.mailing_city),
        (a.mailing_postal_code, b.mailing_postal_code),
        (a.email, b.email),
    )
    phones = {a.home_phone, a.mobile_phone} & {b.home_phone, b.mobile_phone} - {None}
    return bool(phones) or any(x and x == y for x, y in pairs)


def without_home(person: PersonValues) -> PersonValues:
    """The record as the benchmark compared them before homes were encoded."""
    return replace(
        person,
        home_phone=None,
        email=None,
        mailing_city=None,
        mailing_state=None,
        mailing_postal_code=None,
    )


def sibling(
    rng: random.Random, population: Population, of: PersonValues, country: str, ref: str
) -> PersonValues:
    """A hard non-match: same family name, another first name, often the family's phone
    (and always its home: `generate` gives it), born 1-6 years apart."""
    other, _ = population.person(rng, ref)
    # Parents do not give two children one first name: drawn again (from the home stream,
    # so that the persons generated after are those of before) until it differs.
    firsts = population.pools[country]
    firsts = firsts.female if gender_class(other.gender) == "f" else firsts.male
    first = other.first_name
    while name_tokens(first) == name_tokens(of.first_name):
        first = population._pick(population.home_rng, firsts)
    born = (of.birthdate or dt.date(of.birth_year or 1990, 6, 15)) + dt.timedelta(
        days=rng.choice((-1, 1)) * rng.randint(365, 6 * 365)
    )
    return replace(
        other,
        first_name=first,
        second_name=of.second_name,
        birthdate=born if other.birthdate else None,
        birth_year=born.year,
        mobile_phone=of.mobile_phone if rng.random() < 0.3 else other.mobile_phone,
    )
