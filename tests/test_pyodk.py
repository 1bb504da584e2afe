"""ODK's own Python client, pyodk, works against our /v1 as against ODK Central."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD, simple_form_md, xlsx_from_md

pyodk_client = pytest.importorskip("pyodk.client", reason="pyodk is not installed")


@pytest.fixture
def pyodk(live_server, make, tmp_path):
    designer = make.user("designer", name="designer-pyodk")
    config = tmp_path / "pyodk_config.toml"
    config.write_text(
        f'[central]\nbase_url = "{live_server}"\nusername = "{designer.name}"\n'
        f'password = "{PASSWORD}"\ndefault_project_id = 1\n'
    )
    with pyodk_client.Client(config_path=config, cache_path=tmp_path / "cache.toml") as client:
        yield client


def test_pyodk_lists_projects_and_forms(pyodk, make):
    make.form()
    projects = pyodk.projects.list()
    assert [p.name for p in projects] == ["Default project"]
    forms = pyodk.forms.list()
    assert [(f.xmlFormId, f.version, f.state) for f in forms] == [("household", "1", "open")]
    form = pyodk.forms.get("household")
    assert form.name == "Household" and form.publishedAt is not None


def test_pyodk_creates_and_updates_a_form(pyodk, tmp_path):
    path = tmp_path / "household.xlsx"
    path.write_bytes(xlsx_from_md(simple_form_md(version="1")))
    pyodk.forms.create(definition=path)
    newer = tmp_path / "household_v2.xlsx"
    extra = "|          | integer | q_count | How many? | Combien ? |"
    newer.write_bytes(xlsx_from_md(simple_form_md(version="2", extra=extra)))
    pyodk.forms.update("household", definition=newer)
    assert pyodk.forms.get("household").version == "2"
