"""The local persons' linkage encodings, kept in the database, and matching against them.

- **Kept per person** (`person_linkage`, with its keys indexed in `person_linkage_keys`),
  made lazily and in bulk: a new or changed person is flagged `needs_linkage` (free for
  the submission worker), and `refresh_encodings` encodes the flagged ones, 1,000 at a
  time, before anything is matched (and by `casebridge sync encode`). A person made here
  from a linked mission's case keeps the encoding that came with it (source `peer`): its
  names stayed with the owner, so it could not be encoded here.
- **Matching** one incoming person reads only its candidates: the persons sharing one of
  its keyed blocking keys or exact tokens (one indexed SELECT), then decides with
  `sync.linkage.match_one` over an index of just those. A name's rarity counts the
  persons with the same name filter, who share its name-pair key and so are all among the
  candidates; whether a spelling is known anywhere is asked of the index by spelling key.
  The likelihood (`sync.linkage_weights`) needs the register's year and locality counts,
  which an index of candidates does not have: not used here yet (such pairs go to review).
- **Sending**: `encoding_for(case)` is what a case's upserts carry to linked missions
  (`payload["linkage"]`), made with the shared secret: never names.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from server.cases.models import Case, Person
from server.extensions import db
from sync.linkage import Encoder, LocalIndex, Match, PersonEncoding, PersonValues, match_one
from sync.linkage import exact_tokens as _exact_tokens
from sync.linkage_encoding import BLOOM_BITS, DOCUMENT_EDIT_TOKENS, TOKEN_BYTES
from sync.linkage_secret import fingerprint, linkage_secret_path, load_linkage_secret
from sync.models import PersonLinkage, PersonLinkageKey

#: Most blocking keys a received encoding may hold (a person has a handful).
MAX_BLOCKS = 64
#: Persons encoded per round of `refresh_encodings` (one SELECT, one INSERT per table).
REFRESH_BATCH = 1000
VALUE_COLUMNS = (
    Person.first_name,
    Person.middle_name,
    Person.second_name,
    Person.birthdate,
    Person.birth_year,
    Person.gender,
    Person.identity_number,
    Person.mobile_phone,
    Person.home_phone,
    Person.email,
    Person.mailing_city,
    Person.mailing_state,
    Person.mailing_postal_code,
)


@dataclass
class Linkage:
    """This mission's encoder and the fingerprint of its secret; None where linkage is off."""

    encoder: Encoder
    key_id: str


def current_linkage() -> Linkage | None:
    """An encoder for this mission's linkage secret, or None if it has none."""
    secret = _secret(linkage_secret_path())
    if secret is None:
        return None
    return Linkage(Encoder(secret), fingerprint(secret))


def _secret(path: Path) -> bytes | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _read_secret(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _read_secret(path: str, _mtime_ns: int, _size: int) -> bytes | None:
    """Read once per version of the file, not once per case a batch routes."""
    return load_linkage_secret(Path(path))


def encoding_for(case: Case, linkage: Linkage | None = None) -> dict | None:
    """The encoding of the case's person to send with it (ref = the case uuid), or None."""
    linkage = linkage or current_linkage()
    if linkage is None or case.person is None:
        return None
    return linkage.encoder.encode(PersonValues.from_person(case.person, ref=case.uuid)).as_json()


def received_encoding(data: object) -> PersonEncoding:
    """A peer's encoding (`payload["linkage"]`), its shape and sizes checked (its contents
    are keyed noise); ValueError if it is not one."""
    if not isinstance(data, dict):
        raise ValueError("not an object")
    try:
        encoding = PersonEncoding.from_json({**data, "ref": "incoming"})
    except (KeyError, TypeError) as error:
        raise ValueError("not a person encoding") from error
    tokens = [
        encoding.name_pair,
        encoding.document,
        encoding.phone,
        encoding.name_dob,
        encoding.birthdate,
        encoding.birth_year,
        encoding.gender,
        encoding.home_phone,
        encoding.email,
        encoding.city,
        encoding.city_state,
        encoding.postcode,
        *encoding.blocks,
        *encoding.near_years,
        *encoding.document_edits,
    ]
    if (
        any(b.bit_length() > BLOOM_BITS for b in (encoding.first, encoding.family, encoding.full))
        or any(token is not None and len(token) != TOKEN_BYTES for token in tokens)
        or len(encoding.blocks) > MAX_BLOCKS
        or len(encoding.near_years) > 2
        or len(encoding.document_edits) > DOCUMENT_EDIT_TOKENS
    ):
        raise ValueError("a person encoding of the wrong size")
    return encoding


# ---- the keys of an encoding ------------------------------------------------------------


def spelling_key(bloom: int) -> bytes:
    """A first- or family-name filter as an index key: "some local person spells it so"."""
    data = b"casebridge-linkage/v1/spelling|" + bloom.to_bytes(BLOOM_BITS // 8, "big")
    return hashlib.sha256(data).digest()[:16]


def candidate_keys(encoding: PersonEncoding) -> set[bytes]:
    """The keys that make a local person a candidate: blocks, name pair, exact tokens."""
    keys = set(encoding.blocks) | set(_exact_tokens(encoding))
    if encoding.name_pair is not None:
        keys.add(encoding.name_pair)
    return keys


def index_keys(encoding: PersonEncoding) -> set[bytes]:
    spellings = {spelling_key(b) for b in (encoding.first, encoding.family) if b}
    return candidate_keys(encoding) | spellings


# ---- keeping encodings ------------------------------------------------------------------


def store_encodings(
    encodings: Iterable[tuple[int, PersonEncoding]], key_id: str, source: str
) -> None:
    """Replace the encodings of these persons (person id, encoding), in bulk."""
    rows = list(encodings)
    if not rows:
        return
    ids = [person_id for person_id, _ in rows]
    db.session.execute(delete(PersonLinkageKey).where(PersonLinkageKey.person_id.in_(ids)))
    db.session.execute(delete(PersonLinkage).where(PersonLinkage.person_id.in_(ids)))
    db.session.execute(
        insert(PersonLinkage),
        [
            {
                "person_id": person_id,
                "key_id": key_id,
                "source": source,
                "encoding": encoding.as_json(),
            }
            for person_id, encoding in rows
        ],
    )
    keys = [
        {"person_id": person_id, "key": key}
        for person_id, encoding in rows
        for key in sorted(index_keys(encoding))
    ]
    if keys:
        db.session.execute(insert(PersonLinkageKey), keys)


def forget_encoding(person_id: int) -> None:
    """Drop a person's encoding (e.g. a withdrawn copy's): encoded again from what is left."""
    db.session.execute(delete(PersonLinkageKey).where(PersonLinkageKey.person_id == person_id))
    db.session.execute(delete(PersonLinkage).where(PersonLinkage.person_id == person_id))
    db.session.execute(update(Person).where(Person.id == person_id).values(needs_linkage=True))


def refresh_encodings(linkage: Linkage, *, limit: int | None = None) -> int:
    """Encode the persons flagged `needs_linkage`; how many. The caller commits.

    A person with a peer's encoding and no name here keeps it (there is nothing better).
    """
    db.session.flush()
    done = 0
    while limit is None or done < limit:
        size = REFRESH_BATCH if limit is None else min(REFRESH_BATCH, limit - done)
        rows = db.session.execute(
            select(Person.id, *VALUE_COLUMNS)
            .where(Person.needs_linkage.is_(True))
            .order_by(Person.id)
            .limit(size)
        ).all()
        if not rows:
            break
        ids = [row.id for row in rows]
        from_peer = set(
            db.session.scalars(
                select(PersonLinkage.person_id).where(
                    PersonLinkage.person_id.in_(ids),
                    PersonLinkage.source == "peer",
                    PersonLinkage.key_id == linkage.key_id,
                )
            )
        )
        encodings = [
            (row.id, linkage.encoder.encode(_values(row)))
            for row in rows
            if not (row.id in from_peer and _nameless(row))
        ]
        store_encodings(encodings, linkage.key_id, "local")
        db.session.execute(
            update(Person)
            .where(Person.id.in_(ids))
            .values(needs_linkage=False)
            .execution_options(synchronize_session=False)
        )
        done += len(rows)
    return done


def _values(row) -> PersonValues:
    return PersonValues(
        ref=str(row.id),
        first_name=row.first_name,
        middle_name=row.middle_name,
        second_name=row.second_name,
        birthdate=row.birthdate,
        birth_year=row.birth_year,
        gender=row.gender,
        identity_number=row.identity_number,
        mobile_phone=row.mobile_phone,
        home_phone=row.home_phone,
        email=row.email,
        mailing_city=row.mailing_city,
        mailing_state=row.mailing_state,
        mailing_postal_code=row.mailing_postal_code,
    )


def _nameless(row) -> bool:
    return not (row.first_name or row.middle_name or row.second_name)


def mark_all_for_encoding() -> int:
    """After a new secret: every person is encoded again; peers' encodings are dropped
    (made with the old secret, they can no longer be compared). How many persons."""
    db.session.execute(delete(PersonLinkageKey))
    db.session.execute(delete(PersonLinkage))
    result = db.session.execute(
        update(Person).values(needs_linkage=True).execution_options(synchronize_session=False)
    )
    return result.rowcount


# ---- matching ---------------------------------------------------------------------------


def find_matches(incoming: PersonEncoding, linkage: Linkage) -> list[Match]:
    """The local persons the incoming one may be (Match.local = person id as text): one
    certain match, or up to three possible ones, or none. Encodings are refreshed first."""
    refresh_encodings(linkage)
    keys = candidate_keys(incoming)
    if not keys:
        return []
    candidates = (
        select(PersonLinkageKey.person_id).where(PersonLinkageKey.key.in_(sorted(keys))).distinct()
    )
    rows = db.session.execute(
        select(PersonLinkage.person_id, PersonLinkage.encoding).where(
            PersonLinkage.person_id.in_(candidates), PersonLinkage.key_id == linkage.key_id
        )
    ).all()
    if not rows:
        return []
    index = LocalIndex.build(
        PersonEncoding.from_json({**encoding, "ref": str(person_id)})
        for person_id, encoding in rows
    )
    spellings = {spelling_key(b): b for b in (incoming.first, incoming.family) if b}
    known = db.session.scalars(
        select(PersonLinkageKey.key).where(PersonLinkageKey.key.in_(sorted(spellings))).distinct()
    )
    index.known_spellings.update(spellings[key] for key in known)
    index.complete = False  # its year and locality counts are of the candidates only
    return match_one(incoming, index)
