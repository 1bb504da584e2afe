"""The questionnaires we ship publish cleanly, in English and French, consent first."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.forms import odk_validate
from server.forms import operations as ops
from server.forms.xform import languages, parse_xml_safely, preview

XLSFORMS = sorted((Path(__file__).resolve().parent.parent / "xlsforms").glob("*.xlsx"))


def test_three_questionnaires_are_shipped():
    assert [p.name for p in XLSFORMS] == ["assistance.xlsx", "reintegration.xlsx", "screening.xlsx"]


@pytest.mark.parametrize("path", XLSFORMS, ids=lambda p: p.stem)
def test_shipped_form_has_no_errors_or_warnings(app_context, path):
    if not odk_validate.java_available():
        pytest.skip("java is not installed: ODK Validate cannot run (CI has java)")
    prepared = ops.prepare_form(ops.Upload(path.name, path.read_bytes()))
    assert prepared.warnings == []
    assert prepared.info.version
    items = preview(parse_xml_safely(prepared.xml.encode()))
    assert {"English (en)", "French (fr)"} <= set(languages(items))
    names = [item.name for item in items if item.kind == "question"]
    assert "con_consent" in names
    if path.stem == "screening":
        assert names.index("con_consent") < min(
            i for i, n in enumerate(names) if n.startswith(("prs_", "vic_"))
        ), "consent is asked before any personal question"
