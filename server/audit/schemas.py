"""The audit page's query parameters."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, post_load, pre_load, validate

from server.audit.operations import ACTIONS, AuditFilters


class AuditFiltersSchema(Schema):
    """Unknown parameters are ignored, blanks mean absent."""

    class Meta:
        unknown = EXCLUDE

    action = fields.String(validate=validate.OneOf(ACTIONS, error="Not an audited action."))
    user_id = fields.Integer(strict=False, validate=validate.Range(min=1))
    object_type = fields.String(validate=validate.Length(max=32))
    object_id = fields.String(validate=validate.Length(max=64))
    since = fields.Date()
    until = fields.Date()

    @pre_load
    def _drop_blanks(self, data, **kwargs) -> dict:
        return {key: value for key, value in data.items() if value.strip()}

    @post_load
    def _make(self, data: dict, **kwargs) -> AuditFilters:
        return AuditFilters(**data)
