"""The benchmark's caseload: deterministic, what Collect sends, and the shipped forms make cases.

Doubles as the end-to-end test of xlsforms/: screening and follow-up submissions, filled
from the forms' own instances, posted as a phone posts them and drained by the worker.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import select

from bench.caseload import ASSISTANCE, SCREENING, Caseload, fill_instance
from server.cases.models import Case
from server.extensions import db
from server.forms import operations as ops
from server.forms.xlsform import xlsform_to_xform
from server.submissions.models import Submission
from tests.cases_support import post
from tests.factories import app_user_with_forms, xlsx_from_md

XLSFORMS = Path(__file__).resolve().parent.parent / "xlsforms"

SMALL_MD = """
| survey   |                   |          |         |                       |             |
|          | type              | name     | label   | relevant              | save_to     |
|          | select_one yn     | consent  | Consent |                       | cases#con_Consent |
|          | text              | name     | Name    | ${consent} = 'yes'    | cases#prs_FirstName |
|          | begin_repeat      | place    | Places  | ${consent} = 'yes'    |             |
|          | text              | city     | City    |                       | movement_events#hte_City |
|          | text              | city_why | Why     | ${city} = 'other'     |             |
|          | end_repeat        |          |         |                       |             |
| choices  |                   |          |         |
|          | list_name         | name     | label   |
|          | yn                | yes      | Yes     |
|          | yn                | no       | No      |
| entities |                   |          |         |
|          | list_name         | label    | create_if |
|          | cases             | ${name}  | ${consent} = 'yes' |
|          | movement_events   | ${city}  |         |
| settings |                   |          |         |
|          | form_id           | version  |         |
|          | small             | 3        |         |
"""


def _small_xform() -> str:
    return xlsform_to_xform(xlsx_from_md(SMALL_MD), "small.xlsx").xform


def _uuids():
    counter = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(counter):012d}"


def test_fill_instance_writes_what_collect_sends():
    xml = fill_instance(
        _small_xform(),
        {"consent": "yes", "name": "Sokha"},
        {"place": [{"city": "Poipet", "@entity": {"label": "Poipet"}}, {"city": "Bangkok"}]},
        instance_id="uuid:1",
        entities={"cases": {"create": "1", "label": "Sokha"}},
        new_uuid=_uuids(),
    )
    root = etree.fromstring(xml)
    assert xml.startswith(b"<?xml") and root.tag == "data" and root.get("version") == "3"
    places = root.findall("place")
    assert [p.findtext("city") for p in places] == ["Poipet", "Bangkok"]
    assert all(p.find("city_why") is None for p in places), "not relevant: left out"
    assert [p.find("meta/entity").get("id")[-1] for p in places] == ["1", "2"]
    assert root.find("meta/entity").get("id").endswith("3")
    assert root.findtext("meta/instanceID") == "uuid:1"
    assert not [e for e in root.iter() if e.get("{http://openrosa.org/javarosa}template")]

    refused = etree.fromstring(
        fill_instance(_small_xform(), {"consent": "no"}, instance_id="uuid:2")
    )
    assert refused.find("name") is None and refused.find("place") is None


def test_fill_instance_refuses_a_generator_slip():
    with pytest.raises(KeyError, match="nickname"):
        fill_instance(_small_xform(), {"nickname": "x"}, instance_id="uuid:3")
    with pytest.raises(ValueError, match="not relevant"):
        fill_instance(_small_xform(), {"consent": "no", "name": "x"}, instance_id="uuid:4")


def test_the_caseload_is_deterministic_and_counts_what_it_made():
    first = Caseload(40, seed=7)
    made = [(s.instance_id, s.xml) for s in first]
    assert made == [(s.instance_id, s.xml) for s in Caseload(40, seed=7)]
    assert made != [(s.instance_id, s.xml) for s in Caseload(40, seed=8)]
    stats = first.stats
    assert stats["cases"] == 40 and stats["screenings"] == 40 + stats["refused"]
    assert len(made) == stats["screenings"] + stats[ASSISTANCE] + stats["cb_reintegration"]


def _code(choice: str) -> str:
    """HTCDS value names are the choice names in CamelCase."""
    return "".join(part.capitalize() for part in choice.split("_"))


@pytest.fixture
def shipped(app, make, monkeypatch):
    """The shipped forms, published from xlsforms/ (ODK Validate is tested elsewhere)."""
    monkeypatch.setitem(app.config, "ODK_VALIDATE", "off")
    project = make.project()
    for name in ("screening.xlsx", "assistance.xlsx"):
        upload = ops.Upload(name, (XLSFORMS / name).read_bytes())
        ops.publish_form(project, ops.prepare_form(upload))
    db.session.commit()
    _, token = app_user_with_forms(project)
    return project.id, token


def _pick(caseload: Caseload):
    """Three plain screenings, a refusal, an invalid value, and a follow-up of one of them."""
    subs = list(caseload)
    screenings = [s for s in subs if s.form_id == SCREENING]
    plain = [s for s in screenings if s.consented and s.invalid is None][:3]
    refused = next(s for s in screenings if not s.consented)
    invalid = next(s for s in screenings if s.invalid)
    follow_up = next(s for s in subs if s.form_id == ASSISTANCE and s.consented)
    updated = next(s for s in screenings if s.case_uuid == follow_up.case_uuid)
    return plain, refused, invalid, follow_up, updated


def test_generated_submissions_become_cases_through_the_shipped_forms(
    shipped, client, runner, app_context
):
    project_id, token = shipped
    plain, refused, invalid, follow_up, updated = _pick(Caseload(120, seed=3, invalid_share=0.05))
    screenings = {s.instance_id: s for s in [*plain, refused, invalid, updated]}.values()
    for sub in [*screenings, follow_up]:  # a follow-up comes after its screening
        assert post(client, project_id, token, sub.xml).status_code == 201
    assert runner.invoke(args=["worker", "--burst"]).exit_code == 0

    states = dict(db.session.execute(select(Submission.instance_id, Submission.state)).all())
    for sub in plain:
        assert states[sub.instance_id] == "normalized"
        case = db.session.scalar(select(Case).where(Case.uuid == sub.case_uuid))
        a, person = sub.answers, case.person
        assert case.reference == a["cas_case_id"] and case.label == f"CB-{a['cas_case_id'][:8]}"
        assert (person.first_name, person.gender) == (a["prs_firstname"], _code(a["prs_gender"]))
        assert person.citizenship == a["prs_citizenship"]
        if "prs_birthdate" in a:
            assert person.birthdate == a["prs_birthdate"]
        else:
            assert person.age_estimate == a["cb_age_estimate"]
        assert case.consent.given is True and case.status == _code(a["cas_status"])
        assert case.victim.trafficking_status == _code(a["vic_traffickingstatus"])
        events = sub.repeats.get("trafficking_event", [])
        assert [(e.type, e.country) for e in case.movement_events] == [
            (_code(e["hte_type"]), e["hte_country"]) for e in events
        ]
        assert len(case.perpetrators) == len(sub.repeats.get("perpetrator", []))
        assert sorted(p.type for p in case.support_plans) == sorted(
            _code(p["spl_type"]) for p in sub.repeats["support_plan"]
        )
        if events:
            assert case.episodes[0].types_of_exploitation == [
                _code(t) for t in sub.answers["vic_typeofexploitation"]
            ]
    assert states[refused.instance_id] == "normalized"
    assert db.session.scalar(select(Case).where(Case.uuid == refused.case_uuid)) is None
    flagged = db.session.scalar(
        select(Submission).where(Submission.instance_id == invalid.instance_id)
    )
    assert flagged.state == "needs_review" and len(flagged.problems) == 1
    assert db.session.scalar(select(Case).where(Case.uuid == invalid.case_uuid)) is not None

    assert states[follow_up.instance_id] == "normalized"
    case = db.session.scalar(select(Case).where(Case.uuid == follow_up.case_uuid))
    assert case.version == 2 and case.status == _code(follow_up.answers["cas_status"])
    assert [a.provider_name for a in case.assistance] == [follow_up.answers["org_name"]]
    assert case.assistance[0].date == follow_up.answers["cb_assistance_date"]


def test_an_invalid_citizenship_replaces_an_other_answer_with_its_text():
    """Found at 200,000 cases: 'other' then an invalid citizenship left the 'other' text
    answered while no longer relevant, and the generator refused its own submission."""
    caseload = Caseload(3000, seed=2008, invalid_share=1.0)
    assert sum(1 for _ in caseload) >= 3000
