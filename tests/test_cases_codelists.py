"""HTCDS 2.0 code lists (generated from the standard's CSV) and the ISO country/language codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.cases import codes
from server.cases.codes import InvalidCode, canonical_value, country, language
from server.cases.generate_codelists import OUTPUT, read_fields, render
from server.cases.htcds import KINDS, choice_name
from server.cases.htcds_fields import FIELDS

HTCDS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "htcds"
CSV = HTCDS / "htcds_field_standards_2.0.csv"


def _value_names(field_name: str) -> list[str]:
    return [name for name, _label in FIELDS[field_name].values]


def test_generated_file_is_up_to_date():
    if not CSV.is_file():
        pytest.skip(
            "../shared/reference/htcds is absent (only developers' and CI's clones have it)"
        )
    assert OUTPUT.read_text(encoding="utf-8") == render(*read_fields(CSV)), (
        "run: .venv/bin/python -m server.cases.generate_codelists"
    )


def test_every_field_is_well_formed():
    assert len(FIELDS) > 80
    for key, field in FIELDS.items():
        assert key == field.name
        assert field.kind in KINDS
        assert field.label and field.section
        assert bool(field.values) == (field.kind in ("picklist", "multi_picklist")), key
        for name, label in field.values:
            assert name == name.strip() and label == label.strip(), (key, name, label)
            assert name and label
            assert "ISO" not in name and "ISO" not in label, (key, name)


@pytest.mark.parametrize(
    ("field_name", "expected"),
    [
        ("prs_Gender", ["Feminine", "Masculine", "TransgenderFeminine", "NonSpecifiedUnknown"]),
        ("vic_TypeOfExploitation", ["ForcedLabour", "SexualExploitation", "Other"]),
        ("hte_Type", ["Recruitment", "Transit", "Exploitation"]),
        ("cas_Status", ["Active", "FollowUp", "Closed", "ClosedReferred"]),
        ("vic_MethodsOfControl", ["DebtBondage"]),  # "DebtBondage " in the CSV
        ("vic_RelationshipToTrafficker", ["Unaquainted"]),  # HTCDS's spelling is the name
    ],
)
def test_known_values_are_present(field_name, expected):
    assert set(expected) <= set(_value_names(field_name))


def test_exact_value_lists():
    assert _value_names("hte_Type") == ["Recruitment", "Transit", "Exploitation"]
    assert _value_names("cas_Status") == ["Active", "FollowUp", "Closed", "ClosedReferred"]
    assert dict(FIELDS["prs_Gender"].values)["NonConforming"] == "Non-Conforming"  # was "…\xa0"
    assert len(FIELDS["spl_Type"].values) == 9  # the cell ends with a blank line
    assert len(FIELDS["vic_ForcedLabourIndustry"].values) == 21  # ISIC sections A–U


def test_placeholders_become_kinds_not_values():
    kinds = {name: field.kind for name, field in FIELDS.items()}
    assert kinds["prs_Citizenship"] == "multi_country"
    assert kinds["prs_MailingCountry"] == "country"
    assert kinds["org_ShippingCountry"] == "country"
    assert kinds["prs_PrimaryLanguage"] == kinds["prs_SecondaryLanguage"] == "language"
    assert kinds["org_ShippingState"] == "text"  # "Picklist or Text" with no values
    assert kinds["vic_LocationOfRecruitment"] == "lookup"
    assert FIELDS["vic_LocationOfRecruitment"].type == "Lookup [to organisation]"
    assert FIELDS["vic_TraffickingStatus"].core is True
    assert FIELDS["org_Name"].core is False
    assert FIELDS["vic_Vulnerabilities"].deprecated
    assert FIELDS["vic_TraffickingStatus"].section == "Person - Victim Context"


@pytest.mark.parametrize(
    ("value_name", "expected"),
    [
        ("PossibleVictimOfTrafficking", "possible_victim_of_trafficking"),
        ("NotAVictimOfTrafficking", "not_a_victim_of_trafficking"),
        ("A_AgricultureForestryAndFishing", "a_agriculture_forestry_and_fishing"),
        ("NGO", "ngo"),
        ("FollowUp", "follow_up"),
        ("ThreatensChildrenFamily", "threatens_children_family"),
        ("4Sale", "4_sale"),
    ],
)
def test_choice_name(value_name, expected):
    assert choice_name(value_name) == expected


@pytest.mark.parametrize(
    ("field_name", "raw", "expected"),
    [
        ("vic_TraffickingStatus", "possible_victim_of_trafficking", "PossibleVictimOfTrafficking"),
        ("vic_TraffickingStatus", "PossibleVictimOfTrafficking", "PossibleVictimOfTrafficking"),
        ("vic_TraffickingStatus", "possiblevictimoftrafficking", "PossibleVictimOfTrafficking"),
        ("vic_TraffickingStatus", "not_a_victim_of_trafficking", "NotAVictimOfTrafficking"),
        (
            "vic_ForcedLabourIndustry",
            "a_agriculture_forestry_and_fishing",
            "A_AgricultureForestryAndFishing",
        ),
        (
            "vic_ForcedLabourIndustry",
            "A_AGRICULTUREFORESTRYANDFISHING",
            "A_AgricultureForestryAndFishing",
        ),
        ("vic_MethodsOfControl", "debt_bondage", "DebtBondage"),
        ("vic_MethodsOfControl", "DebtBondage ", "DebtBondage"),  # as HTCDS's own XLSForm sends it
        ("vic_TypeOfExploitation", "other", "Other"),
        ("vic_RecruitmentWebsitesAndApps", "whatsapp", "WhatsApp"),
        ("vic_RecruitmentWebsitesAndApps", "4sale", "4Sale"),
        ("cas_Status", "follow_up", "FollowUp"),
        ("org_Type", "ngo", "NGO"),
        ("prs_Citizenship", "tha", "THA"),
        ("prs_PrimaryLanguage", "km", "khm"),
    ],
)
def test_canonical_value(field_name, raw, expected):
    assert canonical_value(field_name, raw) == expected


def test_invalid_value_says_what_is_allowed():
    with pytest.raises(InvalidCode) as caught:
        canonical_value("prs_Gender", "female")
    error = caught.value
    assert (error.field, error.raw) == ("prs_Gender", "female")
    assert str(error) == error.message
    assert "'female' is not a value of Gender (prs_Gender)" in error.message
    assert "feminine, masculine, transgender_feminine" in error.message


@pytest.mark.parametrize(
    ("field_name", "raw"),
    [
        ("prs_Gender", "other"),  # no Other in this list
        ("cas_Status", "follow up"),
        ("cas_Status", ""),
        ("vic_TypeOfExploitation", "forced_labour forced_marriage"),  # one item at a time
        ("prs_Citizenship", "other"),
    ],
)
def test_invalid_values_raise(field_name, raw):
    with pytest.raises(InvalidCode):
        canonical_value(field_name, raw)


def test_long_invalid_value_is_cut_short_in_the_message():
    with pytest.raises(InvalidCode) as caught:
        canonical_value("cas_Status", "x" * 10_000)
    assert len(caught.value.message) < 300
    assert caught.value.raw == "x" * 10_000


def test_fields_without_code_lists_are_caller_bugs():
    with pytest.raises(ValueError, match="prs_FirstName is a text field"):
        canonical_value("prs_FirstName", "Ana")
    with pytest.raises(KeyError):
        canonical_value("prs_NoSuchField", "x")


def test_field_values():
    assert codes.field_values("hte_Type")[0] == ("Recruitment", "Recruitment")
    assert codes.field_values("prs_FirstName") == ()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("THA", "THA"),
        ("th", "THA"),
        ("KHM", "KHM"),
        (" kh ", "KHM"),
        ("XXA", "XXA"),
        ("xxb", "XXB"),
    ],
)
def test_country(raw, expected):
    assert country(raw) == expected


@pytest.mark.parametrize("raw", ["XYZ", "other", "", "Thailand", "XK", "764"])
def test_invalid_country(raw):
    with pytest.raises(InvalidCode, match="is not an ISO 3166-1 country code") as caught:
        country(raw, field="prs_MailingCountry")
    assert caught.value.field == "prs_MailingCountry"


def test_country_name():
    assert codes.country_name("th") == "Thailand"
    assert codes.country_name("XXA") == "Stateless person"
    with pytest.raises(InvalidCode):
        codes.country_name("XYZ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("khm", "khm"),
        ("km", "khm"),
        ("KM", "khm"),
        ("fre", "fra"),  # ISO 639-2/B
        ("fra", "fra"),
        ("chi", "zho"),
        ("mya", "mya"),
        ("kar", "kar"),  # 639-2 collective (Karen languages), used by the shipped forms
        ("sgn", "sgn"),
    ],
)
def test_language(raw, expected):
    assert language(raw) == expected


@pytest.mark.parametrize("raw", ["xx", "other", "", "Khmer", "fr-FR"])
def test_invalid_language(raw):
    with pytest.raises(InvalidCode, match="is not an ISO 639 language code"):
        language(raw)


def test_language_name():
    assert codes.language_name("km") == "Khmer"
    assert codes.language_name("fre") == "French"
