"""JSON shapes of the /v1 API, following ODK Central's where Central has the resource."""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema, fields

from server.forms.models import Form, FormDef


class ProjectSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    description = fields.String(allow_none=True)
    keyId = fields.Constant(None)
    archived = fields.Boolean()
    createdAt = fields.Function(lambda p: iso(p.created_at))
    updatedAt = fields.Function(lambda p: iso(p.updated_at))


class UserSchema(Schema):
    id = fields.Integer()
    type = fields.Constant("user")
    displayName = fields.String(attribute="name")
    email = fields.String(allow_none=True)
    role = fields.String()
    createdAt = fields.Function(lambda u: iso(u.created_at))


@dataclass
class FormView:
    """A form seen through one of its definitions (current, draft or a version)."""

    form: Form
    form_def: FormDef | None


class FormSchema(Schema):
    projectId = fields.Function(lambda v: v.form.project_id)
    xmlFormId = fields.Function(lambda v: v.form.xml_form_id)
    state = fields.Function(lambda v: v.form.state)
    name = fields.Function(lambda v: v.form_def.title if v.form_def else None)
    version = fields.Function(lambda v: v.form_def.version if v.form_def else None)
    hash = fields.Function(lambda v: v.form_def.xml_md5 if v.form_def else None)
    sha256 = fields.Function(lambda v: v.form_def.xml_sha256 if v.form_def else None)
    keyId = fields.Function(lambda v: 1 if v.form_def and v.form_def.public_key else None)
    enketoId = fields.Constant(None)
    draftToken = fields.Constant(None)
    publishedAt = fields.Function(lambda v: iso(v.form_def.published_at) if v.form_def else None)
    createdAt = fields.Function(lambda v: iso(v.form.created_at))
    updatedAt = fields.Function(lambda v: iso(v.form.updated_at))
    warnings = fields.Function(lambda v: v.form_def.warnings if v.form_def else [])


class AttachmentSchema(Schema):
    name = fields.String()
    type = fields.String()
    exists = fields.Function(lambda a: a.blob_id is not None)
    blobExists = fields.Function(lambda a: a.blob_id is not None)
    datasetExists = fields.Function(lambda a: a.dataset is not None)
    hash = fields.Function(lambda a: a.blob.md5 if a.blob is not None else None)
    updatedAt = fields.Function(lambda a: iso(a.updated_at))


def iso(value) -> str | None:
    return value.isoformat(timespec="milliseconds") + "Z" if value else None


class SessionSchema(Schema):
    token = fields.String()
    csrf = fields.String()
    createdAt = fields.Function(lambda s: iso(s["session"].created_at))
    expiresAt = fields.Function(lambda s: iso(s["session"].expires_at))
