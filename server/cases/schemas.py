"""JSON shapes of cases under /v1, keyed by HTCDS names (`prs_FirstName`).

The HTCDS fields of each record come from the field table in `fields.py`, so a field added
there shows up here too; the other keys (`uuid`, `version`, dates) are written out below.
"""

from __future__ import annotations

from collections.abc import Iterable

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    pre_load,
    validate,
)

from server.cases import codes
from server.cases.fields import CHILD_FIELDS, FIELDS, MULTI_KINDS, Field, Kind, Record
from server.cases.queries import (
    AGE_BANDS,
    CaseFilters,
    Page,
    age_band,
    exploitation_types,
    is_retrafficked,
    version_source,
)
from server.cases.reading import MISSION_CODE
from server.schemas import iso

_SCALARS = {
    Kind.DATE: fields.Date,
    Kind.INTEGER: fields.Integer,
    Kind.DECIMAL: fields.Float,
    Kind.BOOLEAN: fields.Boolean,
}
#: Where a part of the case sits, seen from the case (for the summary's dotted attributes).
_FROM_CASE = {"case": "", "person": "person.", "victim": "victim."}


def _field(spec: Field, prefix: str = "") -> fields.Field:
    attribute = prefix + spec.attribute
    if spec.kind in MULTI_KINDS:
        return fields.List(fields.String(), attribute=attribute)
    return _SCALARS.get(spec.kind, fields.String)(attribute=attribute)


def _htcds(specs: Iterable[Field], *, from_case: bool = False) -> dict[str, fields.Field]:
    """Marshmallow fields named as HTCDS names them, reading the model attribute behind each."""
    return {s.name: _field(s, _FROM_CASE[s.part] if from_case else "") for s in specs}


def _part(part: str) -> dict[str, fields.Field]:
    return _htcds(f for f in FIELDS.values() if f.part == part)


def _record(record: Record) -> dict[str, fields.Field]:
    return _htcds(CHILD_FIELDS[record].values())


def _when(name: str) -> fields.Function:
    return fields.Function(lambda obj: iso(getattr(obj, name)))


class PersonSchema(Schema):
    uuid = fields.String()

    class Meta:
        include = _part("person")


class VictimSchema(Schema):
    class Meta:
        include = _part("victim")


class ChildSchema(Schema):
    uuid = fields.String()
    created_at = _when("created_at")


class EpisodeSchema(ChildSchema):
    class Meta:
        include = _record(Record.EPISODES)


class MovementEventSchema(ChildSchema):
    class Meta:
        include = _record(Record.MOVEMENT_EVENTS)


class PerpetratorSchema(ChildSchema):
    class Meta:
        include = _record(Record.PERPETRATORS)


class SupportPlanSchema(ChildSchema):
    class Meta:
        include = _record(Record.SUPPORT_PLANS)


class AssistanceSchema(ChildSchema):
    class Meta:
        include = _record(Record.ASSISTANCE)


class ConsentSchema(ChildSchema):
    """The statement in force; earlier ones are in the case history."""

    class Meta:
        include = _part("consent")


class CaseVersionSchema(Schema):
    """One change; `instanceId` and `submitter` are added from the submission behind it."""

    version = fields.Integer()
    created_at = _when("created_at")
    base_version = fields.Integer(allow_none=True)
    changes = fields.Raw()
    conflicts = fields.List(fields.String())

    @post_dump(pass_original=True)
    def _add_source(self, data: dict, version, **kwargs) -> dict:
        return {**data, **version_source(version)}


class CaseSchema(Schema):
    """One case in full: only for users who may see it (see queries.get_case)."""

    uuid = fields.String()
    project_id = fields.Integer()
    owner_mission = fields.String()
    label = fields.String()
    version = fields.Integer()
    opened_at = _when("opened_at")
    closed_at = _when("closed_at")
    updated_at = _when("updated_at")
    retrafficked = fields.Function(is_retrafficked)
    person = fields.Nested(PersonSchema)
    victim = fields.Nested(VictimSchema, allow_none=True)
    episodes = fields.List(fields.Nested(EpisodeSchema))
    movement_events = fields.List(fields.Nested(MovementEventSchema))
    perpetrators = fields.List(fields.Nested(PerpetratorSchema))
    support_plans = fields.List(fields.Nested(SupportPlanSchema))
    assistance = fields.List(fields.Nested(AssistanceSchema))
    consent = fields.Nested(ConsentSchema, allow_none=True)
    versions = fields.List(fields.Nested(CaseVersionSchema))

    class Meta:
        include = _part("case")


#: What a case list shows: enough to find and count cases, no names or contact details.
SUMMARY_FIELDS = ("cas_Reference", "cas_Status", "prs_Gender", "prs_Citizenship")


class CaseSummarySchema(Schema):
    uuid = fields.String()
    project_id = fields.Integer()
    owner_mission = fields.String()
    label = fields.String()
    version = fields.Integer()
    opened_at = _when("opened_at")
    updated_at = _when("updated_at")
    birth_year = fields.Integer(attribute="person.birth_year")
    age_band = fields.Function(lambda case: age_band(case.person.birth_year))
    vic_TypeOfExploitation = fields.Function(exploitation_types)
    retrafficked = fields.Function(is_retrafficked)

    class Meta:
        include = _htcds((FIELDS[name] for name in SUMMARY_FIELDS), from_case=True)


class Code(fields.String):
    """A query parameter holding a value of an HTCDS coded field, loaded as its canonical form."""

    def __init__(self, htcds_name: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.htcds_name = htcds_name

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        try:
            return codes.canonical_value(self.htcds_name, raw)
        except codes.InvalidCode as error:
            raise ValidationError(error.message) from error


class _QuerySchema(Schema):
    """Query parameters: others are ignored (clients add their own), blanks mean absent."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _drop_blanks(self, data, **kwargs) -> dict:
        return {key: value for key, value in data.items() if value.strip()}


class CaseFiltersSchema(_QuerySchema):
    status = Code("cas_Status")
    gender = Code("prs_Gender")
    age_band = fields.String(validate=validate.OneOf(AGE_BANDS, error="Use one of: {choices}."))
    citizenship = Code("prs_Citizenship")
    exploitation = Code("vic_TypeOfExploitation")
    mission = fields.String(
        validate=validate.Regexp(MISSION_CODE, error="Not a mission code (e.g. THA or KHM-PP).")
    )
    retrafficked = fields.Boolean()
    project_id = fields.Integer(strict=False, validate=validate.Range(min=1))
    q = fields.String(validate=validate.Length(max=64))

    @post_load
    def _make(self, data: dict, **kwargs) -> CaseFilters:
        return CaseFilters(**data)


class PageSchema(_QuerySchema):
    """limit and offset as Central takes them; a limit above the maximum is cut to it."""

    limit = fields.Integer(validate=validate.Range(min=0))
    offset = fields.Integer(validate=validate.Range(min=0))

    @post_load
    def _make(self, data: dict, **kwargs) -> Page:
        return Page(**data)
