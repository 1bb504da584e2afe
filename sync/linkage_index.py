"""The local persons' encodings, indexed for record linkage (`sync.linkage` decides).

Built once from the local persons' `PersonEncoding`s (in the database: from just the
candidates of one incoming person, `sync.linkage_store`), looked up by blocking key and
exact token; persons are grouped by their name filters, so a name shared by many is
compared once per incoming person. It also answers how often a name is had here
(`namesakes`): a count made where the names are known, never sent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sync.linkage_compare import filter_similarity, home_place, with_counts, year_fits
from sync.linkage_encoding import PersonEncoding

NAME_REVIEW = 0.80  #: with no exact agreement: a name this alike goes to review...
MAX_NAME_ONLY = 5  #: ...unless more local persons than this have such a name (too common)
#: Names this alike count as one name for its frequency (`LocalIndex.namesakes`): as alike
#: as a typo leaves a name, and as two real names can be (Olena and Oksana Shevchenko).
NAME_SIMILAR = 0.85


@dataclass
class LocalIndex:
    """The local persons' encodings, built once, looked up by blocking key and exact token."""

    encodings: list[PersonEncoding] = field(default_factory=list)
    #: Distinct (first, family, full) name filters with their bit counts.
    names: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    name_ids: dict[tuple[int, int, int], int] = field(default_factory=dict)
    name_of: list[int] = field(default_factory=list)  #: position -> name id
    #: Year blocking key -> name id -> positions of the persons with that name.
    blocks: dict[bytes, dict[int, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    #: Name-pair key -> name id -> positions, for persons with and without a birth year.
    pairs_dated: dict[bytes, dict[int, list[int]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    pairs_undated: dict[bytes, dict[int, list[int]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    #: Document, phone, birth date and name + birth date tokens -> positions.
    exact: dict[bytes, list[int]] = field(default_factory=lambda: defaultdict(list))
    #: How many local persons have each full-name filter: a name's rarity.
    name_counts: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    #: Every first- and family-name filter some local person has: the known spellings.
    known_spellings: set[int] = field(default_factory=set)
    #: (name id, locality or postal code token) -> positions: namesakes of one place.
    by_name_home: dict[tuple[int, bytes], list[int]] = field(
        default_factory=lambda: defaultdict(list)
    )
    #: Locality or postal code token -> the name ids of its persons.
    names_at_home: dict[bytes, set[int]] = field(default_factory=lambda: defaultdict(set))
    #: Birth-year token -> how many local persons were born that year (with a year: `dated`).
    year_counts: dict[bytes, int] = field(default_factory=lambda: defaultdict(int))
    dated: int = 0
    #: Locality or postal code token -> how many local persons live there.
    place_counts: dict[bytes, int] = field(default_factory=lambda: defaultdict(int))
    #: Whether the index holds the whole register, so its counts are frequencies here
    #: (`sync.linkage_store` builds one of just an incoming person's candidates: False).
    complete: bool = True
    #: An incoming name's filters and name-pair key -> (similarity, persons) of the local
    #: names sharing its name-pair key, most alike first (`name_frequencies`).
    _frequencies: dict[tuple[int, int, int, bytes | None], list[tuple[float, int]]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def build(cls, encodings: Iterable[PersonEncoding]) -> LocalIndex:
        index = cls()
        for encoding in encodings:
            index.add(encoding)
        return index

    def add(self, encoding: PersonEncoding) -> None:
        position = len(self.encodings)
        self.encodings.append(encoding)
        name_key = (encoding.first, encoding.family, encoding.full)
        name_id = self.name_ids.setdefault(name_key, len(self.names))
        if name_id == len(self.names):
            self.names.append(with_counts(encoding))
        self.name_of.append(name_id)
        for key in encoding.blocks:
            self.blocks[key].setdefault(name_id, []).append(position)
        if encoding.name_pair is not None:
            pairs = self.pairs_dated if encoding.birth_year else self.pairs_undated
            pairs[encoding.name_pair].setdefault(name_id, []).append(position)
        for token in exact_tokens(encoding):
            self.exact[token].append(position)
        self.name_counts[encoding.full] += 1
        if encoding.birth_year is not None:
            self.year_counts[encoding.birth_year] += 1
            self.dated += 1
        self.known_spellings.update((encoding.first, encoding.family))
        for home in (encoding.city, encoding.postcode):
            if home is not None:
                self.by_name_home[(name_id, home)].append(position)
                self.names_at_home[home].add(name_id)
                self.place_counts[home] += 1

    def candidates(self, incoming: PersonEncoding) -> dict[int, float]:
        """Positions worth a decision, with their name similarity.

        Every local person sharing an exact token (document, phone, birth date, name + birth
        date), and those whose names are `NAME_REVIEW` alike in the shared blocks, unless
        more than `MAX_NAME_ONLY` are: a name that common decides nothing on its own, except
        among the few of them with the same home locality.
        """
        mine = with_counts(incoming)
        found: dict[int, float] = {}
        for token in exact_tokens(incoming):
            for position in self.exact.get(token, ()):
                if position not in found:
                    found[position] = filter_similarity(mine, self.names[self.name_of[position]])
        groups: list[dict[int, list[int]]] = [self.blocks.get(k, {}) for k in incoming.blocks]
        if incoming.name_pair is not None:
            groups.append(self.pairs_undated.get(incoming.name_pair, {}))
            if not incoming.birth_year:
                groups.append(self.pairs_dated.get(incoming.name_pair, {}))
        similarity: dict[int, float] = {}
        alike: dict[int, float] = {}
        homes = [t for t in (incoming.city, incoming.postcode) if t is not None]
        for group in groups:
            for name_id, positions in group.items():
                value = similarity.get(name_id)
                if value is None:
                    value = similarity[name_id] = filter_similarity(mine, self.names[name_id])
                if value >= NAME_REVIEW:
                    alike.update(dict.fromkeys(positions, value))
            if len(alike) > MAX_NAME_ONLY:
                if not homes:
                    return found
                return found | self._same_home(incoming, homes, mine, groups, similarity)
        found.update(alike)
        return found

    def namesakes(self, incoming: PersonEncoding, level: float = NAME_SIMILAR) -> int:
        """How many local persons, of any birth year or none, have a name `level` alike to
        the incoming one's (`NAME_SIMILAR`: as alike as a typo leaves a name): its frequency
        here (Fellegi and Sunter's frequency-based weights), counted where it is known and
        never sent. Among the persons sharing its name-pair key, who are all candidates, in
        the database as here."""
        if incoming.name_pair is None:
            return len(self.encodings)  # no name to count: nothing is rare
        return sum(n for alike, n in self.name_frequencies(incoming) if alike >= level)

    def name_frequencies(self, incoming: PersonEncoding) -> list[tuple[float, int]]:
        """(similarity, how many local persons have that name) for each local name sharing
        the incoming name-pair key, most alike first; computed once per incoming name."""
        key = (incoming.first, incoming.family, incoming.full, incoming.name_pair)
        found = self._frequencies.get(key)
        if found is None:
            mine, counts = with_counts(incoming), defaultdict(int)
            for pairs in (self.pairs_dated, self.pairs_undated):
                for name_id, positions in pairs.get(incoming.name_pair, {}).items():
                    counts[filter_similarity(mine, self.names[name_id])] += len(positions)
            found = self._frequencies[key] = sorted(counts.items(), reverse=True)
        return found

    def _same_home(
        self,
        incoming: PersonEncoding,
        homes: list[bytes],
        mine: tuple[int, int, int, int, int, int],
        groups: list[dict[int, list[int]]],
        similarity: dict[int, float],
    ) -> dict[int, float]:
        """Too common a name in the blocks: only the persons of the same home locality with
        such a name (and a birth year that does not differ by more than one), if few."""
        alike: dict[int, float] = {}
        here = set().union(*(self.names_at_home.get(home, ()) for home in homes))
        for group in groups:
            for name_id in group.keys() & here:
                value = similarity.get(name_id)
                if value is None:
                    value = similarity[name_id] = filter_similarity(mine, self.names[name_id])
                if value < NAME_REVIEW:
                    continue
                for home in homes:
                    for position in self.by_name_home.get((name_id, home), ()):
                        local = self.encodings[position]
                        if year_fits(incoming, local) and home_place(incoming, local) == "same":
                            alike[position] = value
        return alike if len(alike) <= MAX_NAME_ONLY else {}

    def __len__(self) -> int:
        return len(self.encodings)


def exact_tokens(encoding: PersonEncoding) -> list[bytes]:
    """The tokens that make a candidate whatever the blocks say. Not the locality: a whole
    village would be a candidate; it decides among the candidates the names found."""
    tokens = (
        encoding.document,
        encoding.phone,
        encoding.home_phone,
        encoding.email,
        encoding.birthdate,
        encoding.name_dob,
    )
    return [t for t in tokens if t is not None]
