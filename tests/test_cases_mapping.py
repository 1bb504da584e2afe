"""Publishing checks the form-to-case mapping and says what is wrong by sheet, row, column."""

from __future__ import annotations

import pytest

from server.forms import operations as ops
from server.forms.problems import FormRejected
from tests.cases_support import SCREENING_MD
from tests.factories import PASSWORD, counts, xlsx_from_md


def mapped_form(rows: str, entities: str = "| | cases | ${first} |") -> str:
    return f"""
    | survey   |                 |        |        |         |
    |          | type            | name   | label  | save_to |
    |          | text            | first  | First  | prs_FirstName |
    {rows}
    | choices  |                 |        |        |
    |          | list_name       | name   | label  |
    |          | gender          | feminine | Woman |
    |          | gender          | masculine | Man  |
    | entities |                 |        |        |
    |          | list_name       | label  |        |
    {entities}
    | settings |                 |        |        |
    |          | form_id         | version |       |
    |          | mapped          | 1      |        |
    """


def problems_of(markdown: str):
    with pytest.raises(FormRejected) as rejected:
        ops.prepare_form(ops.Upload("mapped.xlsx", xlsx_from_md(markdown)))
    return rejected.value.problems


def test_the_mapping_is_kept_on_the_published_version(make):
    form = make.form(SCREENING_MD)
    mapping = form.current_def.case_mapping
    datasets = {d["dataset"]: d for d in mapping["datasets"]}
    assert set(datasets) == {"cases", "movement_events"}
    assert datasets["movement_events"]["repeat"] is True
    assert {"path": "event/etype", "field": "hte_Type"} not in datasets["cases"]["fields"]
    assert {"path": "etype", "field": "hte_Type"} in datasets["movement_events"]["fields"]
    assert {"path": "gender", "field": "prs_Gender"} in datasets["cases"]["fields"]


def test_a_form_without_entities_has_no_mapping(make):
    assert make.form().current_def.case_mapping is None


def test_an_unknown_field_is_located_with_a_suggestion(app_context):
    [problem] = problems_of(mapped_form("| | text | family | Family | prs_Secondname |"))
    assert (problem.sheet, problem.row, problem.column) == ("survey", 3, "save_to")
    assert "'prs_Secondname' is not a field of the 'cases'" in problem.message
    assert "Did you mean 'prs_SecondName'?" in problem.message


def test_a_field_of_another_list_says_which(app_context):
    [problem] = problems_of(mapped_form("| | date | d | Date | hte_Date |"))
    assert "belongs to 'movement_events'" in problem.message and problem.row == 3


def test_select_multiple_into_a_single_value_field(app_context):
    [problem] = problems_of(mapped_form("| | select_multiple gender | g | G | prs_Gender |"))
    assert problem.row == 3 and problem.column == "save_to"
    assert "select_multiple" in problem.message and "holds one value" in problem.message


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("| | date | kids | Kids | prs_NumberOfChildren |", "is a number"),
        ("| | integer | born | Born | prs_Birthdate |", "is a date"),
        ("| | decimal | kids | Kids | prs_NumberOfChildren |", "whole number"),
        ("| | integer | g | G | prs_Gender |", "value from a list"),
    ],
)
def test_a_question_of_the_wrong_type(app_context, row, words):
    [problem] = problems_of(mapped_form(row))
    assert problem.row == 3 and words in problem.message


def test_an_entity_list_outside_the_case_schema_is_a_warning(app_context):
    """Any ODK entities form still publishes (ODK Central's own test forms do)."""
    markdown = mapped_form("", entities="| | households | ${first} |").replace(
        "prs_FirstName", "head"
    )
    prepared = ops.prepare_form(ops.Upload("mapped.xlsx", xlsx_from_md(markdown)))
    assert prepared.case_mapping is None
    [warning] = [w for w in prepared.warnings if w.source == "mapping"]
    assert (warning.sheet, warning.row, warning.column) == ("entities", 2, "list_name")
    assert warning.level == "warning" and "make no case records" in warning.message


def test_a_misspelt_case_schema_list_is_an_error(app_context):
    markdown = mapped_form("", entities="| | case | ${first} |").replace("prs_FirstName", "x")
    [problem] = problems_of(markdown)
    assert (problem.sheet, problem.row) == ("entities", 2)
    assert "Did you mean 'cases'?" in problem.message


def test_child_records_need_a_case(app_context):
    markdown = mapped_form("", entities="| | movement_events | ${first} |").replace(
        "prs_FirstName", "hte_City"
    )
    [problem] = problems_of(markdown)
    assert problem.sheet == "entities" and "must also save to the 'cases'" in problem.message


def test_a_rejected_mapping_stores_nothing_and_the_api_lists_the_problems(make, client):
    admin = make.user(role="admin")
    token = client.post("/v1/sessions", json={"email": admin.name, "password": PASSWORD})
    assert token.status_code == 200, token.json
    before = counts()
    response = client.post(
        "/v1/projects/1/forms?publish=true",
        data=xlsx_from_md(mapped_form("| | text | family | Family | prs_Secondname |")),
        headers={
            "Authorization": f"Bearer {token.json['token']}",
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "X-XlsForm-FormId-Fallback": "mapped",
        },
    )
    assert response.status_code == 400
    [problem] = response.json["problems"]
    assert (problem["sheet"], problem["row"], problem["column"]) == ("survey", 3, "save_to")
    assert counts() == before
