"""The likelihood decision (`sync.linkage_weights`): a name, a birth year and a home weighed
by how often the receiving mission's register has them."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from bench.linkage_data import generate
from sync.linkage import Encoder, LocalIndex, PersonValues, match
from sync.linkage_weights import MIN_REGISTER, posteriors

SECRET = b"w" * 32
HOME = {"mailing_city": "Vinnytsia", "mailing_state": "Vinnytska oblast"}
#: Mariia Bondar, a year from an age estimate, her home: the person the tests look for.
MARIIA = PersonValues("L-m", "Mariia", None, "Bondar", None, 1975, "feminine", **HOME)
#: Two more Mariia Bondar here, of far birth years and elsewhere: the name is not rare
#: (the rare-name rule needs at most two), nor is her exact name (the home rule's year
#: one apart needs it).
NAMESAKES = [
    PersonValues(f"L-n{i}", "Mariia", None, "Bondar", None, year, "feminine", None, None)
    for i, year in enumerate((1962, 2004))
]
#: Registered again: the birth year estimated one later, no identifier, the same locality.
AGAIN = replace(MARIIA, ref="I-1", birth_year=1976, mailing_state=None)


def register(size: int = 1000, **home) -> list[PersonValues]:
    """Unrelated persons of the benchmark's countries around the ones a test is about."""
    others = generate(size, 0, seed=3)[0]
    if home:
        others = [replace(p, **home) if i % 2 else p for i, p in enumerate(others)]
    return [*others, MARIIA, *NAMESAKES]


def outcome(incoming: PersonValues, local: list[PersonValues]):
    encoder = Encoder(SECRET)
    index = LocalIndex.build(encoder.encode(p) for p in local)
    return match([encoder.encode(incoming)], index), index


def test_a_name_a_near_year_and_a_home_rare_here_are_certain_by_likelihood():
    """Neither the home rule (a year one apart, a name three have) nor the rare-name rule
    (three namesakes) decides; the odds do: few here are born in 1974-1977, few live in
    Vinnytsia, and the two namesakes are of other years and places."""
    [found], _ = outcome(AGAIN, register())
    assert (found.local, found.status, found.reason) == ("L-m", "certain", "likelihood")


def test_where_many_live_in_that_locality_the_odds_do_not_link():
    [found], _ = outcome(AGAIN, register(**HOME))
    assert (found.local, found.status) == ("L-m", "possible")


def test_a_sister_at_the_same_home_is_not_linked_by_likelihood():
    """Another real first name (a spelling some local person has) weighs a tenth."""
    local = [*register(), PersonValues("L-o", "Oksana", None, "Melnyk", None, 1980, "feminine")]
    sister = replace(AGAIN, first_name="Oksana", birth_year=1975)
    matches, _ = outcome(sister, local)
    assert all(m.status != "certain" for m in matches)


def test_a_register_of_a_few_persons_has_no_frequencies():
    """Among a handful of persons every name, year and place is rare: the rules decide."""
    [found], _ = outcome(AGAIN, register()[-(MIN_REGISTER - 1) :])
    assert (found.local, found.status) == ("L-m", "possible")


def test_an_index_of_candidates_only_has_no_frequencies():
    """The database path builds an index of one person's candidates: its counts are not
    the register's, so the likelihood does not decide there (it stays in review)."""
    encoder = Encoder(SECRET)
    index = LocalIndex.build(encoder.encode(p) for p in register())
    incoming = encoder.encode(AGAIN)
    candidates = index.candidates(incoming)
    from sync.linkage import _novel_spelling

    assert max(posteriors(incoming, candidates, index, _novel_spelling).values()) >= 0.95
    index.complete = False
    assert posteriors(incoming, candidates, index, _novel_spelling) == {}
    [found] = match([incoming], index)
    assert found.status == "possible"


def test_the_counts_stay_at_the_receiver():
    """Nothing new travels: the encoding holds the same fields as before the weights."""
    encoding = Encoder(SECRET).encode(MARIIA).as_json()
    assert set(encoding) == {
        "ref", "first", "family", "full", "blocks", "name_pair", "document",
        "document_edits", "phone", "name_dob", "birthdate", "birth_year", "near_years",
        "gender", "home_phone", "email", "city", "city_state", "postcode",
    }  # fmt: skip


def test_the_same_birth_date_weighs_a_name_the_rules_leave_in_review():
    """Bondarenko for Bondar (0.84 alike, and a spelling another person here has) with the
    same birth date: the rules need 0.85 or a new spelling, so review; one day of a year
    few are born in, among three Mariia Bondar, is odds enough."""
    born = dt.date(1975, 4, 2)
    dated = replace(MARIIA, birthdate=born)
    petro = PersonValues("L-p", "Petro", None, "Bondarenko", None, 1950, "masculine")
    local = [*register()[:-3], dated, *NAMESAKES, petro]
    incoming = replace(dated, ref="I-1", second_name="Bondarenko", **NO_HOME)
    [found], _ = outcome(incoming, local)
    assert (found.local, found.status, found.reason) == ("L-m", "certain", "likelihood")
    other_day = replace(incoming, birthdate=dt.date(1975, 4, 3))
    assert outcome(other_day, local)[0] == []


NO_HOME = {"mailing_city": None, "mailing_state": None}
