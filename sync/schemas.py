"""The shape of a batch, checked once its signature holds and before anything is applied."""

from __future__ import annotations

from marshmallow import Schema, fields
from marshmallow.validate import Equal, Length, OneOf, Range, Regexp

from sync.models import CHANGE_KINDS
from sync.registry import MISSION_CODE
from sync.signing import PROTOCOL

UUID_TEXT = Regexp(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MISSION = Regexp(MISSION_CODE)


class ChangeSchema(Schema):
    change_id = fields.String(required=True, validate=UUID_TEXT)
    case_uuid = fields.String(required=True, validate=UUID_TEXT)
    origin_mission = fields.String(required=True, validate=MISSION)
    version = fields.Integer(required=True, strict=True, validate=Range(min=1))
    kind = fields.String(required=True, validate=OneOf(CHANGE_KINDS))
    payload = fields.Dict(required=True, keys=fields.String())


class BatchSchema(Schema):
    protocol = fields.String(required=True, validate=Equal(PROTOCOL))
    sender = fields.String(required=True, validate=MISSION)
    recipient = fields.String(required=True, validate=MISSION)
    sent_at = fields.String(required=True)
    nonce = fields.String(required=True, validate=Regexp(r"^[0-9a-f]{32,64}$"))
    changes = fields.List(fields.Nested(ChangeSchema), required=True, validate=Length(min=1))
