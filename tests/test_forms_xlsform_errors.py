"""A designer's mistakes come back with the sheet, row and column to fix."""

from __future__ import annotations

import pytest

from server.forms import operations as ops
from server.forms.problems import FormRejected
from tests.factories import xlsx_from_md

UNKNOWN_TYPE = """
| survey |           |        |           |
|        | type      | name   | label     |
|        | text      | a      | A         |
|        | textt     | b      | B         |
"""

MISSING_CHOICE_LIST = """
| survey  |                   |      |       |
|         | type              | name | label |
|         | text              | a    | A     |
|         | select_one colour | b    | B     |
| choices |                   |      |       |
|         | list_name         | name | label |
|         | yes_no            | yes  | Yes   |
"""

DUPLICATE_NAMES = """
| survey |      |      |       |
|        | type | name | label |
|        | text | a    | A     |
|        | note | n    | Note  |
|        | text | a    | Again |
"""

RELEVANCE_UNKNOWN_NAME = """
| survey |         |      |       |              |
|        | type    | name | label | relevant     |
|        | integer | age  | Age   |              |
|        | text    | job  | Job   | ${agee} > 17 |
"""

RELEVANCE_BAD_SYNTAX = """
| survey |         |      |       |                 |
|        | type    | name | label | relevant        |
|        | integer | age  | Age   |                 |
|        | text    | job  | Job   | ${age} >> 17 (( |
"""


def _problems(markdown: str) -> list:
    upload = ops.Upload("designer.xlsx", xlsx_from_md(markdown))
    with pytest.raises(FormRejected) as caught:
        ops.prepare_form(upload)
    return caught.value.problems


@pytest.mark.parametrize(
    ("markdown", "sheet", "row", "column", "words"),
    [
        (UNKNOWN_TYPE, "survey", 3, "type", "textt"),
        (MISSING_CHOICE_LIST, "survey", 3, "type", "colour"),
        (DUPLICATE_NAMES, "survey", 4, "name", "unique"),
        (RELEVANCE_UNKNOWN_NAME, "survey", 3, "relevant", "agee"),
    ],
    ids=["unknown-type", "missing-choice-list", "duplicate-names", "relevance-unknown-name"],
)
def test_pyxform_errors_are_located(app_context, markdown, sheet, row, column, words):
    (problem,) = _problems(markdown)
    assert (problem.sheet, problem.row, problem.column) == (sheet, row, column)
    assert words in problem.message
    assert problem.level == "error"


def test_relevance_syntax_error_is_caught_by_odk_validate_and_located(app_context):
    from server.forms.odk_validate import java_available

    if not java_available():
        pytest.skip("java is not installed: ODK Validate cannot run (CI has java)")
    (problem,) = _problems(RELEVANCE_BAD_SYNTAX)
    assert problem.source == "odk_validate"
    assert (problem.sheet, problem.row) == ("survey", 3)
    assert "ODK Validate" in problem.message


CHOICE_WITHOUT_LABEL = """
| survey  |                   |      |       |
|         | type              | name | label |
|         | select_one yes_no | b    | B     |
| choices |                   |      |       |
|         | list_name         | name | label |
|         | yes_no            | yes  | Yes   |
|         | yes_no            | no   |       |
"""


def test_warnings_are_located_and_do_not_refuse(app_context):
    prepared = ops.prepare_form(ops.Upload("w.xlsx", xlsx_from_md(CHOICE_WITHOUT_LABEL)))
    assert prepared.warnings, "a choice without a label should warn"
    warning = prepared.warnings[0]
    assert warning.level == "warning"
    assert (warning.sheet, warning.row, warning.column) == ("choices", 3, "label")


def test_cli_reports_errors_and_exits_non_zero(runner, tmp_path):
    path = tmp_path / "broken.xlsx"
    path.write_bytes(xlsx_from_md(UNKNOWN_TYPE))
    result = runner.invoke(args=["forms", "publish", str(path)])
    assert result.exit_code != 0
    assert "sheet 'survey', row 3, column 'type'" in result.output
    assert "textt" in result.output


def test_api_returns_a_json_list_of_located_problems(client, make):
    designer = make.user("designer")
    token = client.post(
        "/v1/sessions", json={"email": designer.name, "password": "correct horse battery"}
    ).json["token"]
    response = client.post(
        "/v1/projects/1/forms",
        data=xlsx_from_md(MISSING_CHOICE_LIST),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "X-XlsForm-FormId-Fallback": "broken",
        },
    )
    assert response.status_code == 400
    problems = response.json["problems"]
    assert isinstance(problems, list)
    assert problems[0]["sheet"] == "survey"
    assert problems[0]["row"] == 3
    assert problems[0]["column"] == "type"


def test_upload_page_shows_errors_inline(client, make):
    designer = make.user("designer")
    client.post("/login", data={"username": designer.name, "password": "correct horse battery"})
    response = client.post(
        "/projects/1/forms/upload",
        data={"file": (__import__("io").BytesIO(xlsx_from_md(DUPLICATE_NAMES)), "dup.xlsx")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "The form was not published" in page
    assert '<td data-label="Row">4</td>' in page
    assert '<td data-label="Sheet">survey</td>' in page
