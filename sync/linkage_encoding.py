"""Encodings for privacy-preserving record linkage: what may travel instead of a person.

Before a record from a peer becomes a new case, its person is compared with the local
persons without either side seeing the other's names. Both missions hold the same linkage
secret (shared by linked missions only, never sent, never logged) and encode persons with
it; only a `PersonEncoding` travels:

- **Exact tokens**: keyed HMAC-SHA256 (truncated to 16 bytes) of normalized identifiers
  (identity document number, mobile phone) and of the normalized full name with the birth
  date.
- **Document number, one typo apart**: keyed tokens of its deletion neighbourhood (the
  number, and the number with each one character left out, as in SymSpell's deletion
  index): two numbers one substitution, adjacent transposition, insertion or deletion
  apart share one of them; two unrelated numbers next to never. Each is an HMAC like the
  exact tokens, and keyed padding makes them always `DOCUMENT_EDIT_TOKENS`: no digit,
  bigram or length of the number shows.
- **Bloom filters of names** (Schnell, Bachteler & Reiher 2009, "Privacy-preserving record
  linkage using Bloom filters", BMC Med Inform Decis Mak 9:41): the padded bigrams of the
  first name, of the family name and of all names sorted (any order), each bigram setting
  `BLOOM_HASHES` of `BLOOM_BITS` bits. Names are compared by the Dice coefficient of the
  filters, which tolerates typos and transliterations (`sync.linkage_names` first makes
  spellings comparable). The bit positions come straight from HMAC-SHA512 of the bigram
  ("random hashing") rather than the paper's double hashing, whose structure the attack
  of Niedermeyer et al. (2014) exploits; the cost is the same since bigrams are cached.
- **Birth date, birth year and gender** as keyed tokens, so that equality, a year off by
  one and disagreement can be told without sending the values.
- **Home address and contacts** (the origin address a mission records for family tracing
  and return): keyed tokens of the normalized home locality (city or village, and with
  its state or district), of the postal code, of the home phone (compared with either
  phone) and of the e-mail address. A family shares all of these, so they only ever add
  to names and birth years. The street is not encoded: it would decide next to nothing
  the locality does not (bench/LINKAGE.md), and what is not needed does not travel.
- **Blocking keys** (keyed): the birth year in two-year buckets with the phonetic code of
  each first- and family-name word, so a typo in one name or a year off by one still
  meets; and, for a missing or wrong birth year, the pair of the first and family names'
  codes in either order. Candidates are the local persons sharing any key or exact token.

Whoever holds the secret can encode candidate names and test them against encodings
(a dictionary attack), so encodings are personal data to be kept like the rest of a case.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from dataclasses import dataclass

from sync.linkage_names import bigrams, name_code, name_tokens

BLOOM_BITS = 1000  #: Schnell et al. use 1000 bits per field
BLOOM_HASHES = 20  #: bits per bigram: ~10 bigrams per name fill ~18% of the filter
TOKEN_BYTES = 16  #: identifier and blocking tokens: HMAC-SHA256 truncated (collisions ~2^-64)


@dataclass(frozen=True)
class PersonValues:
    """The plain values linkage uses, from a local Person or a peer's record."""

    ref: str
    first_name: str | None = None
    middle_name: str | None = None
    second_name: str | None = None
    birthdate: dt.date | None = None
    birth_year: int | None = None
    gender: str | None = None
    identity_number: str | None = None
    mobile_phone: str | None = None
    home_phone: str | None = None
    email: str | None = None
    mailing_city: str | None = None
    mailing_state: str | None = None
    mailing_postal_code: str | None = None

    @classmethod
    def from_person(cls, person, ref: str | None = None) -> PersonValues:
        """From a `server.cases.models.Person` (or anything with its attribute names)."""
        return cls(
            ref=ref or str(person.uuid),
            first_name=person.first_name,
            middle_name=person.middle_name,
            second_name=person.second_name,
            birthdate=person.birthdate,
            birth_year=person.birth_year,
            gender=person.gender,
            identity_number=person.identity_number,
            mobile_phone=person.mobile_phone,
            home_phone=person.home_phone,
            email=person.email,
            mailing_city=person.mailing_city,
            mailing_state=person.mailing_state,
            mailing_postal_code=person.mailing_postal_code,
        )


@dataclass(frozen=True, slots=True)
class PersonEncoding:
    """All that travels to match a person before a transfer is accepted: never a name."""

    ref: str  #: the sender's opaque reference (e.g. the case uuid), to answer with
    first: int  #: Bloom filter of the first name
    family: int  #: Bloom filter of the family name
    full: int  #: Bloom filter of all names, words sorted
    blocks: frozenset[bytes]  #: keyed blocking keys: birth-year bucket with a name code
    name_pair: bytes | None = None  #: keyed blocking key of the first and family name codes
    document: bytes | None = None  #: keyed token of the identity document number
    #: Keyed tokens of the document number and of it less each one character.
    document_edits: frozenset[bytes] = frozenset()
    phone: bytes | None = None  #: keyed token of the mobile phone number
    name_dob: bytes | None = None  #: keyed token of the full name with the birth date
    birthdate: bytes | None = None
    birth_year: bytes | None = None
    near_years: frozenset[bytes] = frozenset()  #: tokens of birth year - 1 and + 1
    gender: bytes | None = None
    home_phone: bytes | None = None  #: keyed token of the home phone (same kind as `phone`)
    email: bytes | None = None  #: keyed token of the e-mail address
    city: bytes | None = None  #: keyed token of the home locality (city, town or village)
    city_state: bytes | None = None  #: keyed token of the locality with its state/district
    postcode: bytes | None = None  #: keyed token of the postal code

    def as_json(self) -> dict:
        def b64(value: bytes | None) -> str | None:
            return None if value is None else base64.b64encode(value).decode("ascii")

        def bloom(bits: int) -> str:
            return b64(bits.to_bytes(BLOOM_BITS // 8, "big"))

        return {
            "ref": self.ref,
            "first": bloom(self.first),
            "family": bloom(self.family),
            "full": bloom(self.full),
            "blocks": sorted(b64(t) for t in self.blocks),
            "name_pair": b64(self.name_pair),
            "document": b64(self.document),
            "document_edits": sorted(b64(t) for t in self.document_edits),
            "phone": b64(self.phone),
            "name_dob": b64(self.name_dob),
            "birthdate": b64(self.birthdate),
            "birth_year": b64(self.birth_year),
            "near_years": sorted(b64(t) for t in self.near_years),
            "gender": b64(self.gender),
            "home_phone": b64(self.home_phone),
            "email": b64(self.email),
            "city": b64(self.city),
            "city_state": b64(self.city_state),
            "postcode": b64(self.postcode),
        }

    @classmethod
    def from_json(cls, data: dict) -> PersonEncoding:
        def raw(value: str | None) -> bytes | None:
            return None if value is None else base64.b64decode(value, validate=True)

        def bloom(text: str) -> int:
            return int.from_bytes(raw(text), "big")

        return cls(
            ref=str(data["ref"]),
            first=bloom(data["first"]),
            family=bloom(data["family"]),
            full=bloom(data["full"]),
            blocks=frozenset(raw(t) for t in data["blocks"]),
            name_pair=raw(data.get("name_pair")),
            document=raw(data.get("document")),
            document_edits=frozenset(raw(t) for t in data.get("document_edits", ())),
            phone=raw(data.get("phone")),
            name_dob=raw(data.get("name_dob")),
            birthdate=raw(data.get("birthdate")),
            birth_year=raw(data.get("birth_year")),
            near_years=frozenset(raw(t) for t in data.get("near_years", ())),
            gender=raw(data.get("gender")),
            home_phone=raw(data.get("home_phone")),  # absent from older peers' encodings
            email=raw(data.get("email")),
            city=raw(data.get("city")),
            city_state=raw(data.get("city_state")),
            postcode=raw(data.get("postcode")),
        )


def gender_class(gender: str | None) -> str | None:
    """Gender as linkage compares it: f, m, or unknown (a mismatch only lowers the score)."""
    if gender in ("feminine", "transgender_feminine", "female", "f"):
        return "f"
    if gender in ("masculine", "transgender_masculine", "male", "m"):
        return "m"
    return None


def normalize_identifier(value: str | None) -> str:
    """Upper-case letters and digits only: "ua 123-456" and "UA123456" are one number."""
    return "".join(ch for ch in (value or "").upper() if ch.isalnum())


def normalize_phone(value: str | None) -> str:
    """Digits only, at least 7 of them, compared by the last 9 (no country prefix trouble)."""
    digits = "".join(ch for ch in (value or "") if ch.isdigit())
    return digits[-9:] if len(digits) >= 7 else ""


def normalize_email(value: str | None) -> str:
    """Trimmed and case-folded; an address without "@" is not one."""
    text = (value or "").strip().casefold()
    return text if "@" in text[1:-1] else ""


def normalize_place(value: str | None) -> str:
    """A place name as names are made comparable (script, diacritics, folding), and
    without the words that say what kind of place it is ("village", "district")."""
    return " ".join(w for w in name_tokens(value) if w not in PLACE_WORDS)


#: Words that name the kind of place, dropped from localities: "Kampot Province" and
#: "Kampot" are one place.
PLACE_WORDS = frozenset(
    name_tokens(
        "village town city district province oblast raion rayon region state prefecture "
        "county commune ward khan srok khet amphoe tambon changwat selo misto"
    )
)


class Encoder:
    """Encodes persons with one linkage secret.

    It caches each bigram's and each name's filter (names repeat: that is most of the
    speed), so it holds names in memory: make one per batch or index build, not a global.
    """

    def __init__(self, secret: bytes):
        if len(secret) < 32:
            raise ValueError("A linkage secret has at least 32 random bytes.")
        self._bloom_key = hmac.digest(secret, b"casebridge-linkage/v1/bloom", "sha256")
        self._token_key = hmac.digest(secret, b"casebridge-linkage/v1/token", "sha256")
        self._bigram_bits: dict[str, int] = {}
        self._blooms: dict[tuple[str, ...], int] = {}
        self._tokens: dict[str, bytes] = {}
        self._places: dict[tuple[str | None, str | None], tuple[bytes | None, bytes | None]] = {}

    def token(self, text: str) -> bytes:
        """Keyed token of a tagged plain value ("dob|1990-01-31")."""
        found = self._tokens.get(text)
        if found is None:
            found = self.keyed(text)
            if len(self._tokens) < 100_000:  # years, genders, codes repeat; dates less
                self._tokens[text] = found
        return found

    def keyed(self, text: str) -> bytes:
        """`token` without the cache, for values that seldom repeat."""
        return hmac.digest(self._token_key, text.encode(), "sha256")[:TOKEN_BYTES]

    def place(self, city: str | None, state: str | None) -> tuple[bytes | None, bytes | None]:
        """Keyed tokens of a home locality, and of it with its state (None where absent).
        Localities repeat, as names do: cached."""
        found = self._places.get((city, state))
        if found is None:
            town, region = normalize_place(city), normalize_place(state)
            found = (
                self.token(f"city|{town}") if town else None,
                self.token(f"city-state|{town}|{region}") if town and region else None,
            )
            if len(self._places) < 100_000:
                self._places[(city, state)] = found
        return found

    def _bigram(self, gram: str) -> int:
        bits = self._bigram_bits.get(gram)
        if bits is None:
            digest = hmac.digest(self._bloom_key, gram.encode(), "sha512")
            bits = 0
            for i in range(BLOOM_HASHES):  # 16-bit words mod 1000: bias below 0.1%
                bits |= 1 << (int.from_bytes(digest[2 * i : 2 * i + 2], "big") % BLOOM_BITS)
            self._bigram_bits[gram] = bits
        return bits

    def bloom(self, words: list[str]) -> int:
        """The Bloom filter of these folded words' padded bigrams."""
        key = tuple(words)
        bits = self._blooms.get(key)
        if bits is None:
            bits = 0
            for gram in bigrams(words):
                bits |= self._bigram(gram)
            self._blooms[key] = bits
        return bits

    def encode(self, person: PersonValues) -> PersonEncoding:
        first = name_tokens(person.first_name)
        middle = name_tokens(person.middle_name)
        family = name_tokens(person.second_name)
        everything = sorted(first + middle + family)
        year = person.birthdate.year if person.birthdate else person.birth_year
        number = normalize_identifier(person.identity_number)
        phone = normalize_phone(person.mobile_phone)
        name_dob = None
        if person.birthdate and everything:
            name_dob = self.token(f"name-dob|{' '.join(everything)}|{person.birthdate}")
        gender = gender_class(person.gender)
        home_phone = normalize_phone(person.home_phone)
        email = normalize_email(person.email)
        city, city_state = self.place(person.mailing_city, person.mailing_state)
        postcode = normalize_identifier(person.mailing_postal_code)
        return PersonEncoding(
            ref=person.ref,
            first=self.bloom(first),
            family=self.bloom(family),
            full=self.bloom(everything),
            document=self.token(f"document|{number}") if number else None,
            document_edits=frozenset(self.keyed(v) for v in document_edit_keys(number)),
            phone=self.token(f"phone|{phone}") if phone else None,
            name_dob=name_dob,
            blocks=frozenset(self.token(key) for key in year_blocking_keys(first, family, year)),
            name_pair=self.token(pair) if (pair := name_pair_key(first, family)) else None,
            birthdate=self.token(f"dob|{person.birthdate}") if person.birthdate else None,
            birth_year=self.token(f"year|{year}") if year else None,
            near_years=(
                frozenset((self.token(f"year|{year - 1}"), self.token(f"year|{year + 1}")))
                if year
                else frozenset()
            ),
            gender=self.token(f"gender|{gender}") if gender else None,
            home_phone=self.token(f"phone|{home_phone}") if home_phone else None,
            email=self.token(f"email|{email}") if email else None,
            city=city,
            city_state=city_state,
            postcode=self.token(f"postcode|{postcode}") if postcode else None,
        )


def year_blocking_keys(first: list[str], family: list[str], year: int | None) -> set[str]:
    """Birth-year bucket with the code of each first- and family-name word (plain; the
    encoder keys them). Buckets are two years, an odd year in both of its neighbours', so
    years one apart always share one: blocks stay small without losing a year's error.
    """
    if not year:
        return set()
    codes = {name_code(w) for w in first + family if len(w) > 1}
    return {f"year-name|{b}|{c}" for b in {year // 2, (year + 1) // 2} for c in codes}


def document_edit_keys(number: str) -> set[str]:
    """The number and the number less each one character (plain; the encoder keys them):
    numbers one edit apart share one. Padded to `DOCUMENT_EDIT_TOKENS` with keys of
    this number only (they meet nothing), so the count does not tell the length. None
    for a number too short to tell a typo from another number, or longer than any
    document's."""
    if not MIN_EDIT_DOCUMENT <= len(number) <= MAX_EDIT_DOCUMENT:
        return set()
    variants = {number} | {number[:i] + number[i + 1 :] for i in range(len(number))}
    keys = {f"document-edit|{v}" for v in variants}
    return keys | {f"document-pad|{number}|{i}" for i in range(DOCUMENT_EDIT_TOKENS - len(keys))}


#: Document numbers this long have deletion-neighbourhood tokens: a shorter number has
#: too few neighbours to tell a typo from another number; national identity numbers go
#: up to 16 characters (Indonesia's NIK), passports to 9.
MIN_EDIT_DOCUMENT = 6
MAX_EDIT_DOCUMENT = 16
DOCUMENT_EDIT_TOKENS = MAX_EDIT_DOCUMENT + 1  #: the number's own, and one per character


def name_pair_key(first: list[str], family: list[str]) -> str | None:
    """The codes of the first words of first and family name, in either order: finds a
    person whose birth year is missing (or wrong by more than one) on either side."""
    pair = sorted(name_code(words[0]) for words in (first, family) if words)
    return "names|" + "|".join(pair) if pair else None
