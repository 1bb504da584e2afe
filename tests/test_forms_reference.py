"""Real forms from ODK Collect's and ODK Central's test suites, and the HTCDS XLSForm."""

from __future__ import annotations

import pytest

from server.extensions import db
from server.forms import odk_validate
from server.forms import operations as ops
from server.forms.problems import FormRejected
from server.projects.operations import create_project
from tests.conftest import SHARED

REFERENCE_FORMS = sorted(
    [*SHARED.glob("odk/central/forms/*.xml"), *SHARED.glob("odk/collect-forms/*.xml")]
)

#: A bare '&' in <h:title>: not XML as written; we serve it with '&amp;' and say so.
REPAIRED = {"central/forms/consumeDatasets.xml"}
#: JavaRosa (ODK Validate) refuses it (<select> without any <item>); published only when
#: the uploader insists (force), with Validate's verdict kept as a warning.
VALIDATE_REFUSES = {"central/forms/selectMultiple.xml": "has no choices"}


def _key(path) -> str:
    return str(path.relative_to(SHARED / "odk"))


@pytest.mark.parametrize("path", REFERENCE_FORMS, ids=_key)
def test_reference_xform_publishes(make, shared_reference, path):
    project = create_project(f"project for {path.name}")
    upload = ops.Upload(path.name, path.read_bytes())
    force = _key(path) in VALIDATE_REFUSES
    if force and odk_validate.java_available():
        with pytest.raises(FormRejected, match=VALIDATE_REFUSES[_key(path)]):
            ops.prepare_form(upload)
    prepared = ops.prepare_form(upload, force=force)
    if force and odk_validate.java_available():
        assert any(VALIDATE_REFUSES[_key(path)] in w.message for w in prepared.warnings)
    result = ops.publish_form(project, prepared)
    db.session.commit()
    expected = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    if _key(path) in REPAIRED:
        assert any("bare '&'" in w.message for w in prepared.warnings)
        expected = expected.replace(b"People & Trees", b"People &amp; Trees")
    assert result.form.current_def.xml.encode() == expected


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


def test_cli_force_publishes_a_form_odk_validate_refuses(runner, shared_reference):
    if not odk_validate.java_available():
        pytest.skip("java is not installed: ODK Validate cannot run (CI has java)")
    path = shared_reference / "odk/central/forms/selectMultiple.xml"
    refused = runner.invoke(args=["forms", "publish", str(path)])
    assert refused.exit_code != 0 and "has no choices" in refused.output
    forced = runner.invoke(args=["forms", "publish", str(path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert "published" in forced.output and "warning" in forced.output
