"""Record linkage on plain values: encodings, the local index, certain and possible matches.

No database: `sync.linkage` works on `PersonValues` and the encodings made from them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest

from bench.linkage import evaluate
from bench.linkage_data import generate
from sync.linkage import Encoder, LocalIndex, PersonEncoding, PersonValues, match, match_exact
from sync.linkage_encoding import BLOOM_BITS
from sync.linkage_names import name_code, name_tokens, normalize_name

SECRET = b"k" * 32
OTHER_SECRET = b"o" * 32
BORN = dt.date(1990, 3, 14)

OLENA = PersonValues(
    "L-0", "Olena", None, "Shevchenko", BORN, 1990, "feminine", "UA12345678", "+380501112233"
)


def local_register(*extra: PersonValues) -> list[PersonValues]:
    """A few unrelated persons around the ones a test is about."""
    others = [
        PersonValues("L-1", "Sokha", None, "Chan", dt.date(1995, 1, 2), 1995, "feminine"),
        PersonValues("L-2", "Aye Aye", None, "Win", None, 1988, "feminine"),
        PersonValues("L-3", "Nittaya", None, "Srisuk", dt.date(2001, 7, 9), 2001, "feminine"),
        PersonValues("L-4", "Somchai", None, "Wongsa", dt.date(1979, 5, 5), 1979, "masculine"),
    ]
    return [OLENA, *others, *extra]


def outcome(incoming: PersonValues, register: list[PersonValues] | None = None, secret=SECRET):
    encoder = Encoder(SECRET)
    index = LocalIndex.build(encoder.encode(p) for p in register or local_register())
    return match([Encoder(secret).encode(incoming)], index)


def only(matches):
    assert len(matches) == 1, matches
    return matches[0].local, matches[0].status


# ---- names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("Олена", "olena"),
        ("Шевченко", "shevchenko"),
        ("Ірина", "irina"),
        ("Nguyễn Thị", "nguyen thi"),
        ("Đặng", "dang"),
        ("  Jean-Baptiste O'Neil ", "jean baptiste o neil"),
        ("Łukasz", "lukasz"),
    ],
)
def test_normalize_name_transliterates_and_strips_diacritics(written, expected):
    assert normalize_name(written) == expected


def test_folding_makes_transliteration_variants_identical():
    assert name_tokens("Melnyk") == name_tokens("Мельник") == ["melnik"]
    assert name_tokens("Nataliya") == name_tokens("Natallia") == name_tokens("Наталія")
    assert name_tokens("Iryna") == name_tokens("Irina")


def test_name_code_survives_vowel_variants():
    assert name_code("tetiana") == name_code("tatiana")
    assert name_code("shevchenko") == name_code(name_tokens("Ševčenko")[0])


# ---- encodings ------------------------------------------------------------------------


def test_encoding_is_deterministic_and_carries_no_name():
    encoding = Encoder(SECRET).encode(OLENA)
    assert encoding == Encoder(SECRET).encode(OLENA)
    assert 0 < encoding.first.bit_count() < BLOOM_BITS // 2
    text = json.dumps(encoding.as_json())
    for plain in ("olena", "shevchenko", "1990", "ua12345678", "380501112233", "feminine"):
        assert plain not in text.casefold()
    assert PersonEncoding.from_json(json.loads(text)) == encoding


def test_different_secrets_give_unrelated_encodings_and_never_match():
    mine, theirs = Encoder(SECRET).encode(OLENA), Encoder(OTHER_SECRET).encode(OLENA)
    assert mine.first != theirs.first and mine.document != theirs.document
    assert outcome(replace(OLENA, ref="I-1"), secret=OTHER_SECRET) == []


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError, match="32"):
        Encoder(b"short")


# ---- matching -------------------------------------------------------------------------


def test_the_same_record_is_certain():
    assert only(outcome(replace(OLENA, ref="I-1"))) == ("L-0", "certain")


def test_a_typo_with_the_same_birth_date_is_certain():
    incoming = replace(OLENA, ref="I-1", second_name="Shevchneko", identity_number=None)
    assert only(outcome(replace(incoming, mobile_phone=None))) == ("L-0", "certain")


def test_a_new_spelling_with_the_same_birth_date_is_read_as_a_typo():
    """0.81 alike: below NAME_WITH_BIRTHDATE, but no local person spells a name so."""
    incoming = PersonValues("I-1", "Oleba", None, "Shevhcenko", BORN, 1990, "feminine")
    [found] = outcome(incoming)
    assert (found.local, found.status, found.reason) == ("L-0", "certain", "birthdate")
    assert found.name < 0.85


def test_another_real_name_with_the_same_birth_date_is_only_possible():
    incoming = PersonValues("I-1", "Olena", None, "Shevchuk", BORN, 1990, "feminine")
    assert only(outcome(incoming)) == ("L-0", "certain")  # "Shevchuk": nobody here has it
    someone = PersonValues("L-9", "Iryna", None, "Shevchuk", dt.date(1970, 1, 1), 1970)
    assert only(outcome(incoming, local_register(someone))) == ("L-0", "possible")


def test_one_name_against_two_is_not_certain():
    local = PersonValues("L-9", "Sokha", None, "Sok", dt.date(1999, 9, 9), 1999, "feminine")
    incoming = PersonValues("I-1", "Sokha", None, None, dt.date(1999, 9, 9), 1999, "feminine")
    assert only(outcome(incoming, local_register(local))) == ("L-9", "possible")


def test_cyrillic_against_latin_is_certain():
    incoming = PersonValues("I-1", "Олена", None, "Шевченко", BORN, 1990, "feminine")
    [found] = outcome(incoming)
    assert (found.local, found.status, found.reason) == ("L-0", "certain", "birthdate")
    assert found.name > 0.95


def test_swapped_first_and_family_name_is_certain():
    incoming = PersonValues("I-1", "Shevchenko", None, "Olena", BORN, 1990, "feminine")
    assert only(outcome(incoming)) == ("L-0", "certain")


def test_missing_birth_date_is_found_by_document_even_with_the_year_off():
    incoming = PersonValues(
        "I-1", "Olena", None, "Shevcenko", None, 1991, "feminine", "UA 1234-5678"
    )
    [found] = outcome(incoming)
    assert (found.local, found.status, found.reason) == ("L-0", "certain", "document")


def test_missing_birth_date_and_no_identifier_goes_to_review():
    incoming = PersonValues("I-1", "Olena", None, "Shevchenkp", None, 1991, "feminine")
    assert only(outcome(incoming)) == ("L-0", "possible")


def test_missing_birth_year_is_still_found_through_the_name_pair():
    incoming = PersonValues("I-1", "Shevchenko", None, "Olena", None, None, None, "UA12345678")
    assert only(outcome(incoming)) == ("L-0", "certain")
    no_document = PersonValues("I-2", "Olena", None, "Shevchenko", None, None, "feminine")
    assert only(outcome(no_document)) == ("L-0", "possible")


def test_a_rare_identical_name_with_the_same_birth_year_is_certain():
    incoming = PersonValues("I-1", "Olena", None, "Shevchenko", None, 1990, "feminine")
    assert only(outcome(incoming)) == ("L-0", "certain")


def test_another_person_with_a_common_name_and_the_same_birth_year_is_not_certain():
    namesakes = [
        PersonValues(f"L-siti-{i}", "Siti", None, "Rahayu", dt.date(1990, 1 + i, 10), 1990)
        for i in range(8)
    ]
    register = local_register(*namesakes)
    other_date = PersonValues("I-1", "Siti", None, "Rahayu", dt.date(1990, 11, 30), 1990)
    assert outcome(other_date, register) == []
    no_date = PersonValues("I-2", "Siti", None, "Rahayu", None, 1990, "feminine")
    assert all(m.status == "possible" for m in outcome(no_date, register))
    one_namesake = PersonValues("I-3", "Olena", None, "Shevchenko", dt.date(1990, 8, 1), 1990)
    assert outcome(one_namesake) == []


def test_a_sibling_with_the_family_phone_is_not_certain():
    sister = PersonValues(
        "I-1", "Oksana", None, "Shevchenko", dt.date(1993, 6, 1), 1993, "feminine",
        mobile_phone="+380 50 111 22 33",
    )  # fmt: skip
    assert all(m.status != "certain" for m in outcome(sister))


def test_two_different_documents_rule_out_certain():
    incoming = replace(OLENA, ref="I-1", identity_number="UA87654321")
    assert all(m.status != "certain" for m in outcome(incoming))


def test_exact_baseline_misses_what_the_bloom_filters_find():
    encoder = Encoder(SECRET)
    index = LocalIndex.build(encoder.encode(p) for p in local_register())
    typo = encoder.encode(PersonValues("I-1", "Olena", None, "Shevchneko", BORN, 1990))
    assert match_exact([typo], index) == []
    assert [m.local for m in match([typo], index)] == ["L-0"]


# ---- the benchmark at a tiny scale (so it cannot rot) -----------------------------------


def test_benchmark_generator_and_matcher_at_small_scale():
    local, incoming, truth = generate(3000, 400, seed=7)
    assert (local, incoming) == generate(3000, 400, seed=7)[:2]
    assert len(local) == 3000 and len(incoming) == 400
    assert len(truth.duplicates) == 100 and truth.stats["typo"] > 0
    assert any(any("а" <= ch <= "я" for ch in (p.first_name or "")) for p in local)
    encoder = Encoder(SECRET)
    index = LocalIndex.build(encoder.encode(p) for p in local)
    encodings = [encoder.encode(p) for p in incoming]
    result = evaluate(match(encodings, index), truth, index, encodings)
    assert result["precision"] >= 0.9
    assert result["recall_with_evidence"] >= 0.8
    assert result["recall"] > evaluate(match_exact(encodings, index), truth)["recall"]
