"""Names made comparable across missions before they are encoded for record linkage.

Two missions write the same person's name differently: Cyrillic at one, Latin at the
other; with or without Vietnamese diacritics; "Iryna" or "Irina", "Andrii" or "Andriy".
Both sides run the same steps, so the differences that are only spelling disappear
before any bigram is hashed:

1. NFKC, casefold.
2. Cyrillic to Latin with the table of ICAO Doc 9303 (machine readable travel documents,
   part 3, section 6), the one passports use (Ukrainian and Belarusian letters included).
   Thai, Khmer, Lao and Burmese scripts are not transliterated: those names are expected
   in Latin letters (the forms ask for them so); other letters are kept as they are.
3. Diacritics stripped (NFKD, combining marks dropped), plus the Latin letters NFKD does
   not decompose (đ, ł, ø, æ, ...).
4. Anything not a letter (hyphen, apostrophe, dot, digit) becomes a space; spaces collapse.
5. Folding (`fold`), for encodings only: j/y to i, ph to f, w to v, kh to h, doubled
   letters to one. It costs little discrimination and makes the commonest transliteration
   variants identical ("Melnyk"/"Melnik", "Nataliya"/"Natalia", "Natallia").
"""

from __future__ import annotations

import functools
import re
import unicodedata

# fmt: off
#: ICAO Doc 9303 part 3 (8th ed.), section 6 B: Cyrillic, with Ukrainian/Belarusian letters.
CYRILLIC_TO_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "ґ": "g", "д": "d", "е": "e", "ё": "e",
    "є": "ie", "ж": "zh", "з": "z", "и": "i", "і": "i", "ї": "i", "й": "i", "к": "k",
    "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ў": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "ie", "ы": "y", "ь": "", "э": "e", "ю": "iu", "я": "ia",
    # Kazakh letters (ICAO lists them with the Cyrillic table's extensions)
    "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h",
}
#: Latin letters without a decomposition in Unicode (so NFKD keeps them).
LATIN_EXTRA = {"đ": "d", "ð": "d", "ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "ß": "ss",
               "ı": "i", "þ": "th", "ħ": "h", "ŀ": "l"}
# fmt: on
_TRANSLATE = str.maketrans({**CYRILLIC_TO_LATIN, **LATIN_EXTRA})
_NOT_LETTER = re.compile(r"[^a-z]+")
_FOLDS = (("ph", "f"), ("kh", "h"), ("j", "i"), ("y", "i"), ("w", "v"))
_DOUBLED = re.compile(r"(.)\1+")

#: Soundex-like classes of consonants for blocking codes; vowels and h are dropped.
_CODE_CLASSES = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556", "aeiouhwy")


def normalize_name(text: str | None) -> str:
    """Lower-case ASCII words separated by single spaces (empty for nothing usable)."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).casefold().translate(_TRANSLATE)
    text = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    return _NOT_LETTER.sub(" ", text.translate(_TRANSLATE)).strip()


def fold(normalized: str) -> str:
    """Spelling variants made identical (see the module docstring, step 5)."""
    for old, new in _FOLDS:
        normalized = normalized.replace(old, new)
    return _DOUBLED.sub(r"\1", normalized)


def name_tokens(text: str | None) -> list[str]:
    """The folded words of a name field, in order."""
    return list(_name_tokens(text))


@functools.lru_cache(maxsize=4096)  # the commonest names; bounded, as it outlives batches
def _name_tokens(text: str | None) -> tuple[str, ...]:
    return tuple(fold(normalize_name(text)).split())


def name_code(token: str) -> str:
    """A short phonetic code of one folded word, for blocking (not for scoring).

    The first letter, then the first three consonant classes (Soundex's), vowels ignored
    and repeats collapsed, so "tetiana"/"tatiana" and "sevcenko"/"shevchenko" share a code.
    A typo in the first letter or the first consonants changes it: the other name's code,
    or the name pair, still finds the person.
    """
    classes = _DOUBLED.sub(r"\1", token.translate(_CODE_CLASSES))
    return token[0] + classes[:3]


def bigrams(words: list[str]) -> set[str]:
    """Padded bigrams of the words joined by one space (Schnell et al. 2009 pad with blanks)."""
    if not words:
        return set()
    text = " " + " ".join(words) + " "
    return {text[i : i + 2] for i in range(len(text) - 1)}
