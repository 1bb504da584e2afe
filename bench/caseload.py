"""A seeded 2008-style caseload, as ODK Collect would submit it with our shipped forms.

    from bench.caseload import Caseload, fill_instance
    for sub in Caseload(13_359):        # screenings until 13,359 consented, then follow-ups
        sub.form_id, sub.instance_id, sub.xml

Submissions are made by filling each form's own primary instance (from pyxform, as the
server publishes it) with bench/xform_fill.py: what is not relevant is left out, as Collect
does. Distributions and their sources: bench/CASES.md; the tables: bench/caseload_data.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from bench import caseload_data as data
from bench.xform_fill import XF, fill_instance

__all__ = ["Caseload", "Generated", "fill_instance", "load_xforms"]

ROOT = Path(__file__).resolve().parent.parent
XLSFORMS = ROOT / "xlsforms"

# ---- the shipped forms -------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def load_xforms(forms_dir: Path = XLSFORMS) -> dict[str, str]:
    """form_id -> XForm of every shipped .xlsx, converted as the server converts uploads."""
    from server.forms.xlsform import xlsform_to_xform

    xforms = {}
    for path in sorted(Path(forms_dir).glob("*.xlsx")):
        xform = xlsform_to_xform(path.read_bytes(), path.name).xform
        form_id = etree.fromstring(xform.encode()).find(f"*/{XF}model/{XF}instance/*").get("id")
        xforms[form_id] = xform
    return xforms


# ---- the caseload ------------------------------------------------------------------------

SCREENING, ASSISTANCE, REINTEGRATION = "cb_screening", "cb_assistance", "cb_reintegration"
CONSENT_POINTS = ["purpose", "data_use", "research_use", "right_of_access", "retention",
                  "withdrawal"]  # fmt: skip
#: Values a phone may send that the server must flag for review, not apply (~1%).
INVALID_KINDS = ("citizenship_not_iso", "citizenship_withdrawn_code", "legacy_gender")


@dataclass
class Generated:
    """One submission as a phone would post it, with what went into it (for checks)."""

    form_id: str
    instance_id: str
    xml: bytes
    case_uuid: str | None  #: the case it creates or updates
    consented: bool  #: consent given (screening) or kept (follow-up)
    invalid: str | None = None  #: the INVALID_KINDS value put in on purpose
    answers: dict = field(default_factory=dict)
    repeats: dict = field(default_factory=dict)


class _Weighted:
    """rng.choices with cumulative weights computed once (the generator calls it a lot)."""

    def __init__(self, weights: Mapping[str, float]):
        self.keys = list(weights)
        self.cumulative = []
        total = 0.0
        for key in self.keys:
            total += weights[key]
            self.cumulative.append(total)

    def one(self, rng: random.Random):
        return rng.choices(self.keys, cum_weights=self.cumulative)[0]

    def some(self, rng: random.Random, count: int) -> list:
        chosen: list = []
        while len(chosen) < min(count, len(self.keys)):
            key = self.one(rng)
            if key not in chosen:
                chosen.append(key)
        return chosen


_W = {
    name: _Weighted(table)
    for name, table in {
        "gender": {"feminine": 82, "masculine": 17.4, "transgender_feminine": 0.2,
                   "non_specified_unknown": 0.4},
        "other_exploitation": data.OTHER_EXPLOITATION, "sex": data.SEX_EXPLOITATION,
        "recruitment": data.RECRUITMENT, "platform": data.PLATFORMS, "control": data.CONTROL,
        "status": data.STATUS, "decided_by": data.DECIDED_BY,
        "relationship": data.RELATIONSHIP, "role": data.ROLES, "marital": data.MARITAL,
        "education": data.EDUCATION, "case_status": data.CASE_STATUS,
        "follow_up_status": data.FOLLOW_UP_STATUS, "support": data.SUPPORT,
        "org_type": data.ORG_TYPES, "reintegration": data.REINTEGRATION, "risk": data.RISK,
        "country": {c.code: c.weight for c in data.COUNTRIES},
        "age_band": {band: band[2] for band in data.AGE_BANDS},
        "risk_answer": {"no": 55, "yes": 35, "unknown": 10},
    }.items()
}  # fmt: skip
_EXPLOITATION = {g: _Weighted(dict(rows)) for g, rows in data.EXPLOITATION.items()}
_INDUSTRY = {g: _Weighted(table) for g, table in data.INDUSTRY.items()}
_COUNTRY = {c.code: c for c in data.COUNTRIES}
_DESTINATIONS = {c.code: _Weighted(c.destinations) for c in data.COUNTRIES}


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _stamp(day: dt.date, minutes: int, offset: str) -> str:
    moment = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(minutes=minutes)
    return moment.isoformat(timespec="milliseconds") + offset


@dataclass(frozen=True)
class _Person:
    """What a follow-up needs to know about the case it updates."""

    case_uuid: str
    interviewed: dt.date
    country: str
    seed: int


class Caseload:
    """Screenings until `cases` consented (each makes a case), then the follow-ups.

    Deterministic for a seed: the same bytes every run. ~5% refuse consent (a submission,
    no case); `follow_up_share` of the cases get one assistance (60%) or reintegration (40%)
    follow-up, posted after all screenings with baseVersion 1; `invalid_share` of the
    consented screenings carry one value the server must flag (needs_review).
    """

    def __init__(
        self,
        cases: int = 13_359,
        *,
        seed: int = 2008,
        year: int = 2008,
        refusal_share: float = 0.05,
        follow_up_share: float = 0.20,
        invalid_share: float = 0.01,
        forms_dir: Path = XLSFORMS,
    ):
        self.cases, self.seed, self.year = cases, seed, year
        self.refusal_share, self.follow_up_share = refusal_share, follow_up_share
        self.invalid_share = invalid_share
        self.xforms = load_xforms(Path(forms_dir))
        self.stats: Counter = Counter()

    def __iter__(self) -> Iterator[Generated]:
        rng = random.Random(self.seed)  # noqa: S311 - reproducible data, not secrets
        self.stats = Counter()
        planned: list[_Person] = []
        while self.stats["cases"] < self.cases:
            sub, person = self._screening(rng)
            self.stats["screenings"] += 1
            self.stats["cases" if sub.consented else "refused"] += 1
            self.stats["needs_review_expected"] += sub.invalid is not None
            for repeat, count in sub.repeats.items():
                self.stats[repeat] += len(count)
            if person is not None and rng.random() < self.follow_up_share:
                planned.append(person)
            yield sub
        for person in planned:
            sub = self._follow_up(person)
            self.stats[sub.form_id] += 1
            self.stats["consent_withdrawn"] += not sub.consented
            self.stats["assistance"] += "org_name" in sub.answers
            for repeat, count in sub.repeats.items():
                self.stats[repeat] += len(count)
            yield sub

    def _fill(self, form_id: str, rng: random.Random, answers, repeats, entities) -> Generated:
        instance_id = f"uuid:{_uuid(rng)}"
        xml = fill_instance(
            self.xforms[form_id], answers, repeats, instance_id=instance_id,
            entities=entities, new_uuid=lambda: _uuid(rng),
        )  # fmt: skip
        return Generated(form_id, instance_id, xml, None, True, None, answers, repeats)

    # -- screening ------------------------------------------------------------------------

    def _screening(self, rng: random.Random) -> tuple[Generated, _Person | None]:
        day = dt.date(self.year, 1, 1) + dt.timedelta(days=rng.randrange(366))
        country = self._citizenship(rng)
        profile = _COUNTRY.get(country)
        minutes = rng.randrange(0, 9 * 60)
        offset = data.UTC_OFFSETS.get(country, "+00:00")
        case_ref, case_uuid = _uuid(rng), _uuid(rng)
        consented = rng.random() >= self.refusal_share
        answers: dict[str, object] = {
            "start": _stamp(day, minutes, offset),
            "end": _stamp(day, minutes + rng.randrange(25, 95), offset),
            "today": day,
            "cas_case_id": case_ref,
            "cb_consent_informed": CONSENT_POINTS,
            "con_consent": consented,
            "instanceName": f"Screening {day} {case_ref}",
        }
        repeats: dict[str, list] = {}
        invalid = None
        if consented:
            invalid = self._person(rng, answers, day, country, profile)
            self._victim(rng, answers, repeats, day, country, profile)
            self._case(rng, answers, repeats, day)
        entities = {"cases": {"id": case_uuid, "create": consented, "label": f"CB-{case_ref[:8]}"}}
        sub = self._fill(SCREENING, rng, answers, repeats, entities)
        sub.case_uuid, sub.consented, sub.invalid = case_uuid, consented, invalid
        person = _Person(case_uuid, day, country, rng.getrandbits(64)) if consented else None
        return sub, person

    def _citizenship(self, rng: random.Random) -> str:
        if rng.random() < data.LONG_TAIL_SHARE:
            return rng.choice(data.LONG_TAIL)
        return _W["country"].one(rng)

    def _person(self, rng, answers, day, country, profile) -> str | None:
        gender = _W["gender"].one(rng)
        band = _W["age_band"].one(rng)
        age = rng.randint(band[0], band[1])
        female = gender in ("feminine", "transgender_feminine")
        firsts = (profile.female if female else profile.male) if profile else (
            data.GENERIC_FEMALE if female else data.GENERIC_MALE)  # fmt: skip
        families = profile.family if profile else data.GENERIC_FAMILY
        cities = profile.cities if profile else data.GENERIC_CITIES
        answers.update(
            cb_consent_share=rng.random() < 0.85,
            cb_consent_research=rng.random() < 0.75,
            prs_firstname=rng.choice(firsts),
            prs_middlename=rng.choice(firsts) if rng.random() < 0.15 else None,
            prs_secondname=rng.choice(families) if rng.random() < 0.9 else None,
            prs_gender=gender,
            prs_citizenship=[country] if rng.random() > 0.003 else ["XXA"],
            cb_age_years=age,
        )
        if rng.random() < 0.70:
            days = int((age + rng.uniform(0.01, 0.99)) * 365.25)
            answers.update(cb_birthdate_known="yes", prs_birthdate=day - dt.timedelta(days=days))
        else:
            answers.update(cb_birthdate_known="no", cb_age_estimate=age)
        if rng.random() < 0.35:
            answers["prs_identitynumber"] = f"{country[:2]}{rng.randrange(10**7, 10**8)}"
        languages = profile.languages if profile else ("eng", "fra", "ara", "rus")
        answers["prs_primarylanguage"] = languages[0] if rng.random() < 0.8 else (
            rng.choice(languages))  # fmt: skip
        if rng.random() < 0.3:
            second = rng.choice(("eng", "rus", "tha", "ara"))
            if second != answers["prs_primarylanguage"]:
                answers["prs_secondarylanguage"] = second
        if age >= 18:
            answers["prs_maritalstatus"] = _W["marital"].one(rng) if rng.random() < 0.9 else None
            answers["prs_numberofchildren"] = rng.choices(range(5), (45, 20, 20, 10, 5))[0]
        elif rng.random() < 0.5:
            answers["prs_maritalstatus"] = "single"
        if rng.random() < 0.85:
            answers["prs_highestlevelofeducation"] = _W["education"].one(rng)
        if rng.random() < 0.003:  # a citizenship or language not in the lists: "other"
            answers.update(prs_citizenship=["other"], prs_citizenship_other="Kosovo")
        if rng.random() < 0.003:
            answers.update(prs_primarylanguage="other", prs_primarylanguage_other="Akha")
            answers.pop("prs_secondarylanguage", None)
        self._contact(rng, answers, country, profile, cities)
        if rng.random() < self.invalid_share:
            return self._invalid(rng, answers)
        return None

    def _contact(self, rng, answers, country, profile, cities) -> None:
        dial = profile.dial if profile else "1"
        if rng.random() < 0.40:
            answers["prs_mobilephone"] = f"+{dial}{rng.randrange(10**8, 10**9)}"
        if rng.random() < 0.05:
            answers["prs_homephone"] = f"+{dial}{rng.randrange(10**7, 10**8)}"
        if rng.random() < 0.05:
            answers["prs_email"] = f"person{rng.randrange(10**6)}@example.org"
        if rng.random() < 0.15:
            answers["prs_mailingstreet"] = f"{rng.randrange(1, 300)} Market Street"
        if rng.random() < 0.30:
            answers["prs_mailingcity"] = rng.choice(cities)
            answers["prs_mailingcountry"] = country
        if any(answers.get(k) for k in ("prs_mobilephone", "prs_homephone", "prs_email",
                                        "prs_mailingstreet")):  # fmt: skip
            answers["cb_safe_to_contact"] = "yes" if rng.random() < 0.7 else "no"

    def _invalid(self, rng, answers) -> str:
        kind = rng.choice(INVALID_KINDS)
        if kind.startswith("citizenship"):
            answers.pop("prs_citizenship_other", None)  # no longer relevant: not 'other'
        if kind == "citizenship_not_iso":
            answers["prs_citizenship"] = ["XKX"]  # Kosovo: EU/ICAO code, not ISO 3166
        elif kind == "citizenship_withdrawn_code":
            answers["prs_citizenship"] = ["BUR"]  # Burma: withdrawn from ISO 3166 in 1989
        else:
            answers["prs_gender"] = "female"  # a choice name of an earlier form version
        return kind

    def _victim(self, rng, answers, repeats, day, country, profile) -> None:
        status = _W["status"].one(rng)
        decided = _W["decided_by"].one(rng)
        answers.update(vic_traffickingstatus=status, vic_traffickingstatusdecisionmakingorg=decided)
        if decided == "other":
            answers["vic_traffickingstatusdecisionmakingorg_other"] = "Embassy"
        if status == "not_a_victim_of_trafficking":
            return
        age = answers["cb_age_years"]
        if rng.random() < 0.85:
            answers["vic_agewhentrafficked"] = max(5, age - rng.choice((0, 0, 0, 1, 1, 2, 3)))
        if rng.random() < 0.8:
            answers["vic_relationshiptotrafficker"] = _W["relationship"].one(rng)
        if rng.random() < 0.85:
            methods = _W["recruitment"].some(rng, 1 if rng.random() < 0.75 else 2)
            answers["vic_methodofrecruitment"] = methods
            if "other" in methods:
                answers["vic_methodofrecruitment_other"] = "Approached at the bus station"
            if {"through_online_social_networks", "through_an_online_advertisement"} & set(methods):
                platform = _W["platform"].one(rng)
                answers["vic_recruitmentwebsitesandapps"] = [platform]
                if platform == "other":
                    answers["vic_recruitmentwebsitesandapps_other"] = "Odnoklassniki"
        self._exploitation(rng, answers, age)
        if rng.random() < 0.85:
            control = _W["control"].some(rng, rng.randint(1, 4))
            answers["vic_methodsofcontrol"] = control
            if "other" in control:
                answers["vic_methodsofcontrol_other"] = "Isolation"
        destination = (
            _DESTINATIONS[country].one(rng) if country in _DESTINATIONS else
            rng.choice(("THA", "MYS", "RUS", "TUR", "ARE", country))
        )  # fmt: skip
        repeats["trafficking_event"] = self._events(rng, day, country, destination, profile)
        answers["cb_perpetrators_known"] = "yes" if rng.random() < 0.6 else "no"
        if answers["cb_perpetrators_known"] == "yes":
            count = 1 if rng.random() < 0.7 else 2
            repeats["perpetrator"] = [
                self._perpetrator(rng, country, destination) for _ in range(count)
            ]
        if rng.random() < 0.5:
            answers["vic_locationofrecruitment"] = rng.choice(
                profile.cities if profile else data.GENERIC_CITIES
            )

    def _exploitation(self, rng, answers, age) -> None:
        table = _EXPLOITATION.get(answers["prs_gender"], _EXPLOITATION["feminine"])
        types = table.one(rng)
        if types is None:
            other = _W["other_exploitation"].one(rng)
            types = ("servitude",) if other == "child_labour" and age >= 18 else (other,)
        answers["vic_typeofexploitation"] = list(types)
        if "other" in types:
            answers["vic_typeofexploitation_other"] = "Forced criminality"
        gender = "masculine" if answers["prs_gender"] == "masculine" else "feminine"
        if {"forced_labour", "child_labour"} & set(types) and rng.random() < 0.9:
            answers["vic_forcedlabourindustry"] = _INDUSTRY[gender].one(rng)
        if "sexual_exploitation" in types and rng.random() < 0.9:
            answers["vic_typeofsexexploitation"] = [_W["sex"].one(rng)]
        if rng.random() < 0.05:
            answers["vic_exploitationwebsitesandapps"] = [rng.choice(("facebook", "line", "qq"))]
        if rng.random() < 0.5:
            answers["vic_locationofexploitation"] = rng.choice(
                ("Karaoke bar", "Private house", "Garment factory", "Fishing boat",
                 "Construction site", "Plantation", "Massage parlour", "Restaurant")
            )  # fmt: skip

    def _events(self, rng, day, country, destination, profile) -> list[dict]:
        """Recruitment at home, sometimes a transit, exploitation there: 1 to 3 places."""
        months_ago = rng.randint(1, 30)
        recruited = (day.replace(day=1) - dt.timedelta(days=30 * months_ago)).replace(day=1)
        places = []
        if rng.random() < 0.85:
            places.append(("recruitment", country, recruited))
        transit = profile.transit if profile else ()
        if destination != country and transit and rng.random() < 0.35:
            places.append(("transit", rng.choice(transit), recruited))
        exploited = (recruited + dt.timedelta(days=rng.randint(3, 60))).replace(day=1)
        places.append(("exploitation", destination, min(exploited, day.replace(day=1))))
        events = []
        for kind, where, when in places:
            event: dict[str, object] = {
                "hte_type": kind,
                "hte_date": when if rng.random() < 0.8 else None,
                "hte_country": where,
                "@entity": {"label": kind},
            }
            home = _COUNTRY.get(where)
            if rng.random() < 0.6:
                event["hte_city"] = rng.choice(home.cities if home else data.GENERIC_CITIES)
            description = rng.choice(data.DESCRIPTIONS)
            event["hte_description"] = description or None
            events.append(event)
        return events

    def _perpetrator(self, rng, country, destination) -> dict:
        roles = _W["role"].some(rng, 1 if rng.random() < 0.7 else 2)
        perpetrator: dict[str, object] = {
            "per_roleinprocess": roles,
            "cb_per_gender": rng.choices(
                ("masculine", "feminine", "non_specified_unknown"), (60, 35, 5)
            )[0],  # fmt: skip
            "cb_per_citizenship": [rng.choice((country, country, destination))],
            "@entity": {"label": " ".join(roles)},
        }
        if "other" in roles:
            perpetrator["per_roleinprocess_other"] = "Landlord"
        if rng.random() < 0.2:
            perpetrator["per_organisation"] = rng.choice(("Employment agency", "Karaoke owner"))
        if rng.random() < 0.3:
            perpetrator["per_roledetails"] = "Promised a job and paid for the journey"
        return perpetrator

    def _case(self, rng, answers, repeats, day) -> None:
        status = _W["case_status"].one(rng)
        answers["cas_status"] = status
        if status in ("closed", "closed_referred"):
            answers["cas_reasonforcaseclosure"] = "Returned home; declined further assistance"
        answers["cb_referred_in"] = "yes" if rng.random() < 0.4 else "no"
        if answers["cb_referred_in"] == "yes":
            answers["cas_referringorganisation"] = rng.choice(data.ORGANISATIONS)
            if rng.random() < 0.8:
                answers["cas_incomingreferraldate"] = day - dt.timedelta(days=rng.randint(0, 10))
            if rng.random() < 0.5:
                answers["cas_referringprimarycaseworker"] = "Case worker " + str(rng.randrange(99))
            if rng.random() < 0.7:
                answers["cas_reasonforincomingreferral"] = rng.choices(
                    ("additional_services_required", "migration_or_change_of_location", "other"),
                    (60, 35, 5))[0]  # fmt: skip
            if rng.random() < 0.3:
                answers["cas_incomingreferraldetails"] = "Accompanied by a social worker"
        if answers["cb_consent_share"]:
            answers["cb_referred_out"] = "yes" if rng.random() < 0.3 else "no"
            if answers["cb_referred_out"] == "yes":
                answers["cas_referredorganisation"] = rng.choice(data.ORGANISATIONS)
                if rng.random() < 0.5:
                    answers["cas_referredprimarycaseworker"] = "Focal point"
                if rng.random() < 0.7:
                    answers["cas_reasonforoutgoingreferral"] = "additional_services_required"
                if rng.random() < 0.8:
                    answers["cas_outgoingreferraldate"] = day
                if rng.random() < 0.3:
                    answers["cas_outgoingreferraldetails"] = "Transport arranged by the shelter"
        needs = _W["support"].some(rng, rng.choices((0, 1, 2), (25, 45, 30))[0])
        answers["cb_support_needs"] = needs
        answers["support_plan_count"] = len(needs)
        repeats["support_plan"] = [
            {
                "spl_type": need,
                "cb_spl_type_label": data.SUPPORT_LABELS[need],
                "spl_objectives": rng.choice(data.OBJECTIVES),
                "spl_actionplan": "Weekly visits by the case worker"
                if rng.random() < 0.6
                else None,
                "spl_plannedenddate": (
                    day + dt.timedelta(days=rng.randint(60, 365)) if rng.random() < 0.7 else None
                ),
                "@entity": {"label": need},
            }
            for need in needs
        ]

    # -- follow-ups -----------------------------------------------------------------------

    def _follow_up(self, person: _Person) -> Generated:
        rng = random.Random(person.seed)  # noqa: S311
        form_id = ASSISTANCE if rng.random() < 0.6 else REINTEGRATION
        day = person.interviewed + dt.timedelta(days=rng.randint(20, 180))
        minutes = rng.randrange(0, 9 * 60)
        offset = data.UTC_OFFSETS.get(person.country, "+00:00")
        kept = rng.random() >= 0.02
        title = "Assistance" if form_id == ASSISTANCE else "Reintegration"
        answers: dict[str, object] = {
            "start": _stamp(day, minutes, offset),
            "end": _stamp(day, minutes + rng.randrange(10, 40), offset),
            "today": day,
            "case_id": person.case_uuid,
            "con_consent": kept,
            "instanceName": f"{title} {day} {person.case_uuid}",
        }
        repeats: dict[str, list] = {}
        entities: dict[str, dict] = {"cases": {"id": person.case_uuid, "baseVersion": 1}}
        if kept:
            answers["cb_consent_share"] = rng.random() < 0.85
            if form_id == ASSISTANCE:
                self._assistance(rng, answers, repeats, entities, day)
            else:
                self._reintegration(rng, answers, day, person)
            self._follow_up_case(rng, answers, day)
        sub = self._fill(form_id, rng, answers, repeats, entities)
        sub.case_uuid, sub.consented = person.case_uuid, kept
        return sub

    def _assistance(self, rng, answers, repeats, entities, day) -> None:
        types = _W["support"].some(rng, 1 if rng.random() < 0.7 else 2)
        org = rng.choice(data.ORGANISATIONS)
        answers.update(
            cb_assistance_date=day - dt.timedelta(days=rng.randint(0, 7)),
            cb_assistance_types=types,
            org_name=org,
            org_type=_W["org_type"].one(rng) if rng.random() < 0.8 else None,
            cb_plan_completed="yes" if rng.random() < 0.3 else "no",
        )
        entities["assistance"] = {"label": org}
        if answers["cb_plan_completed"] == "yes":
            repeats["completed_plan"] = [
                {"spl_type": types[0], "spl_actualenddate": day, "@entity": {"label": types[0]}}
            ]

    def _reintegration(self, rng, answers, day, person: _Person) -> None:
        returned = min(day, person.interviewed + dt.timedelta(days=rng.randint(5, 60)))
        home = (
            person.country
            if person.country in _COUNTRY or person.country in data.LONG_TAIL
            else "other"
        )
        answers.update(
            cb_visit_date=day,
            cb_return_date=returned,
            cb_return_country=home,
            cb_return_country_other="Stateless: no country of return" if home == "other" else None,
            cb_reintegration_status=_W["reintegration"].one(rng),
            cb_assistance_types=_W["support"].some(rng, rng.choice((0, 1, 2))),
        )
        for name in ("ind_origin", "ind_sexual_orientation", "ind_age", "hh_income",
                     "hh_violence", "hh_discrimination", "com_law_enforcement",
                     "com_governance", "com_education"):  # fmt: skip
            answers[f"cb_risk_{name}"] = _W["risk_answer"].one(rng)
        risk = _W["risk"].one(rng)
        answers["cb_retrafficking_risk"] = risk
        if risk != "low":
            answers["cb_retrafficking_risk_details"] = "The recruiter lives in the same village"

    def _follow_up_case(self, rng, answers, day) -> None:
        status = _W["follow_up_status"].one(rng)
        answers["cas_status"] = status
        if status in ("closed", "closed_referred"):
            answers["cas_reasonforcaseclosure"] = "Reintegration plan completed"
        answers["cb_follow_up_needed"] = "yes" if rng.random() < 0.6 else "no"
        if answers["cb_follow_up_needed"] == "yes":
            answers["cb_follow_up_date"] = day + dt.timedelta(days=rng.randint(14, 90))
        if rng.random() < 0.5:
            answers["cco_casecomment"] = "Visited at home; the person is well"
