"""Real forms from ODK Collect's and ODK Central's test suites, and the HTCDS XLSForm."""

from __future__ import annotations

import pytest

from server.extensions import db
from server.forms import operations as ops
from server.forms.problems import FormRejected
from server.projects.operations import create_project
from tests.conftest import SHARED

REFERENCE_FORMS = sorted(
    [*SHARED.glob("odk/central/forms/*.xml"), *SHARED.glob("odk/collect-forms/*.xml")]
)

#: Two of Central's fixtures are not forms Collect can open; Central stores them only because
#: it never parses them strictly. We refuse them, and say why.
BROKEN_FIXTURES = {
    # A bare '&' in <h:title>: not XML at all, so no XML parser (JavaRosa's included) reads it.
    "central/forms/consumeDatasets.xml": "not well-formed",
    # <select> without any <item>: JavaRosa (ODK Validate) rejects it.
    "central/forms/selectMultiple.xml": "has no choices",
}


def _key(path) -> str:
    return str(path.relative_to(SHARED / "odk"))


@pytest.mark.parametrize("path", REFERENCE_FORMS, ids=_key)
def test_reference_xform_publishes(make, shared_reference, path):
    project = create_project(f"project for {path.name}")
    upload = ops.Upload(path.name, path.read_bytes())
    if _key(path) in BROKEN_FIXTURES:
        with pytest.raises(FormRejected, match=BROKEN_FIXTURES[_key(path)]):
            ops.prepare_form(upload)
        return
    result = ops.publish_form(project, ops.prepare_form(upload))
    db.session.commit()
    assert result.form.current_def.xml.encode() == path.read_bytes().removeprefix(b"\xef\xbb\xbf")


def test_reference_forms_were_found(shared_reference):
    assert len(REFERENCE_FORMS) >= 27


@pytest.mark.parametrize("name", ["htcds/htcds_xlsform.xlsx", "odk/central/simple.xlsx"])
def test_reference_xlsforms_publish(make, shared_reference, name):
    path = shared_reference / name
    prepared = ops.prepare_form(ops.Upload(path.name, path.read_bytes()))
    result = ops.publish_form(make.project(), prepared)
    db.session.commit()
    assert result.form.current_def.published_at is not None
    assert result.form.current_def.source_blob.content == path.read_bytes()
