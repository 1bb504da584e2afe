"""Comparing two person encodings: names (Dice of Bloom filters), contacts and homes.

Plain functions on `PersonEncoding`s, used by `sync.linkage`'s index and rules.
"""

from __future__ import annotations

from sync.linkage_encoding import PersonEncoding

#: A record with one name is at most this alike to a record with two: "Sokha" and
#: "Sokha Sok" share all bigrams of one word, which says little (review only).
ONE_NAME_CAP = 0.80


def year_fits(a: PersonEncoding, b: PersonEncoding) -> bool:
    """Birth years the same or one apart, or one unknown."""
    return (
        a.birth_year is None
        or b.birth_year is None
        or a.birth_year == b.birth_year
        or a.birth_year in b.near_years
    )


def shares_contact(a: PersonEncoding, b: PersonEncoding) -> bool:
    """A phone (mobile or home, either against either) or an e-mail address in common."""
    if a.email is not None and a.email == b.email:
        return True
    mine = {a.phone, a.home_phone} - {None}
    return bool(mine) and not mine.isdisjoint((b.phone, b.home_phone))


def home_place(a: PersonEncoding, b: PersonEncoding) -> str:
    """ "same" (locality, or postal code, and no state/district against), "other" (both
    name a locality, and they differ), or "unknown"."""
    if a.city is not None and b.city is not None:
        if a.city != b.city:
            return "other" if a.postcode is None or a.postcode != b.postcode else "same"
        if a.city_state is not None and b.city_state is not None:
            return "same" if a.city_state == b.city_state else "other"
        return "same"
    if a.postcode is not None and a.postcode == b.postcode:
        return "same"
    return "unknown"


def dice(a: int, b: int) -> float:
    """Dice coefficient of two Bloom filters: 2|a∧b| / (|a| + |b|)."""
    total = a.bit_count() + b.bit_count()
    return 2 * (a & b).bit_count() / total if total else 0.0


def name_similarity(a: PersonEncoding, b: PersonEncoding) -> float:
    """The best of: names as given, first and family swapped, all names in any order."""
    return filter_similarity(with_counts(a), with_counts(b))


def with_counts(e: PersonEncoding) -> tuple[int, int, int, int, int, int]:
    return (
        e.first,
        e.family,
        e.full,
        e.first.bit_count(),
        e.family.bit_count(),
        e.full.bit_count(),
    )


#: Below this Dice of the sorted full names, neither order of first and family reaches
#: NAME_POSSIBLE either (they share most bigrams), so the two are not computed: speed.
_FULL_PREFILTER = 0.4


def filter_similarity(
    a: tuple[int, int, int, int, int, int], b: tuple[int, int, int, int, int, int]
) -> float:
    a_first, a_family, a_full, na_first, na_family, na_full = a
    b_first, b_family, b_full, nb_first, nb_family, nb_full = b
    total = na_full + nb_full
    best = 2 * (a_full & b_full).bit_count() / total if total else 0.0
    a_both, b_both = na_first and na_family, nb_first and nb_family
    if not (a_both and b_both):
        return min(best, ONE_NAME_CAP) if (a_both or b_both) else best
    if best < _FULL_PREFILTER:
        return best
    straight = (a_first & b_first).bit_count() / (na_first + nb_first) + (
        a_family & b_family
    ).bit_count() / (na_family + nb_family)
    swapped = (a_first & b_family).bit_count() / (na_first + nb_family) + (
        a_family & b_first
    ).bit_count() / (na_family + nb_first)
    return max(best, straight, swapped)  # each half of a mean of two Dice is |a∧b|/(|a|+|b|)
