"""Publishing forms: drafts, versions, media and states. No HTTP here.

Every function either completes or raises before touching the session, so the caller's
single commit (or rollback) at the request/command boundary decides what is stored.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import PurePath

from flask import current_app
from lxml import etree
from sqlalchemy import select

from server import audit
from server.auth.models import User
from server.blobs.models import store_blob
from server.cases import entity_list
from server.cases.mapping import MappingProblems, read_mapping
from server.extensions import db
from server.forms import odk_validate
from server.forms.models import Form, FormAttachment, FormDef, FormState
from server.forms.problems import FormProblem, FormRejected, rejected
from server.forms.xform import (
    ATTACHMENT_NAME,
    XFormInfo,
    inspect_xform,
    parse_xml_safely,
    primary_instance_root,
)
from server.forms.xlsform import (
    load_workbook_for_locating,
    locate_in_xform_names,
    xlsform_to_xform,
)
from server.projects.keys import with_project_key
from server.projects.models import Project

XML_SUFFIXES = (".xml",)
SPREADSHEET_CONTENT_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel",
    ".csv": "text/csv",
    ".xml": "application/xml",
}


class FormConflict(Exception):
    """The upload contradicts what is already published (HTTP 409)."""


class FormNotFound(Exception):
    pass


class AttachmentNotExpected(Exception):
    """The form does not name a media file with that name (HTTP 404, as in Central)."""


@dataclass
class Upload:
    filename: str
    content: bytes
    content_type: str | None = None


@dataclass
class PreparedForm:
    """A checked upload, ready to become a FormDef."""

    xml: str
    info: XFormInfo
    source: Upload
    warnings: list[FormProblem] = field(default_factory=list)
    #: How submissions become cases (server.cases.mapping), or None.
    case_mapping: dict | None = None


@dataclass
class PublishResult:
    form: Form
    form_def: FormDef
    created: bool  # a new form
    changed: bool  # False when the same version and content were already published


def _setting(name: str, default):
    return current_app.config.get(name, default) if current_app else default


def prepare_form(upload: Upload, *, force: bool = False) -> PreparedForm:
    """Convert and check an upload (XLSForm or XForm); raise FormRejected on any error.

    `force` publishes an XForm that ODK Validate refuses, keeping its verdict as a warning
    (ODK Central stores such forms; some are fixtures of its own test suite). Broken XML,
    unsafe XML and pyxform errors are refused whatever `force` says.
    """
    max_bytes = _setting("MAX_FORM_UPLOAD_BYTES", 20 * 1024 * 1024)
    if not upload.content:
        raise rejected(f"'{upload.filename}' is empty.")
    if len(upload.content) > max_bytes:
        raise FormRejected(
            [FormProblem(f"The file is larger than the {max_bytes // 2**20} MB allowed.")],
            status=413,
        )
    suffix = PurePath(upload.filename).suffix.lower()
    workbook = None
    if suffix in XML_SUFFIXES or (not suffix and upload.content.lstrip().startswith(b"<")):
        xml, warnings = _xml_text(upload.content)
    else:
        conversion = xlsform_to_xform(
            upload.content,
            upload.filename,
            max_uncompressed=_setting("MAX_XLSX_UNCOMPRESSED_BYTES", 60 * 1024 * 1024),
        )
        xml, warnings = conversion.xform, conversion.warnings
        workbook = load_workbook_for_locating(upload.content, upload.filename)
    root = parse_xml_safely(xml.encode("utf-8"))
    info = inspect_xform(root)
    try:
        case_mapping, mapping_warnings = read_mapping(root, workbook)
    except MappingProblems as error:
        raise FormRejected(error.problems) from None
    if odk_validate.should_validate(_setting("ODK_VALIDATE", "auto")):
        errors, validate_warnings = odk_validate.validate_xform(xml)
        problems = [_validate_problem(e, workbook) for e in errors]
        if problems and not force:
            raise FormRejected(problems)
        warnings += [replace(p, level="warning") for p in problems]
        warnings += [
            FormProblem(message=w, level="warning", source="odk_validate")
            for w in validate_warnings
        ]
    warnings += mapping_warnings
    return PreparedForm(
        xml=xml, info=info, source=upload, warnings=warnings, case_mapping=case_mapping
    )


def _validate_problem(message: str, workbook) -> FormProblem:
    text = f"ODK Validate (the form engine in ODK Collect) refused the form: {message}"
    if workbook is None:
        return FormProblem(message=text, source="odk_validate")
    return locate_in_xform_names(text, workbook, source="odk_validate")


#: An '&' that starts no entity or character reference: text meant literally.
BARE_AMPERSAND = re.compile(r"&(?!(?:[A-Za-z_][\w.\-]*|#[0-9]+|#x[0-9A-Fa-f]+);)")


def _xml_text(content: bytes) -> tuple[str, list[FormProblem]]:
    """The XForm as text, refusing unsafe or malformed XML.

    One repair is made, and reported: a bare '&' (as in "People & Trees") becomes '&amp;',
    the only thing it can mean. ODK Central stores such files as they are, but no XML
    parser, ODK Collect's included, can read them.
    """
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise rejected("The XForm must be encoded as UTF-8.") from None
    try:
        parse_xml_safely(content)  # refuse DTDs and malformed XML before anything else
    except FormRejected as rejection:
        repaired = BARE_AMPERSAND.sub("&amp;", text)
        if repaired == text or "not well-formed" not in str(rejection):
            raise
        try:
            parse_xml_safely(repaired.encode("utf-8"))
        except FormRejected:
            raise rejection from None
        count = len(BARE_AMPERSAND.findall(text))
        warning = FormProblem(
            message=f"The XForm had {count} bare '&' character(s), which is not valid XML; "
            "they were written as '&amp;' so that phones can read the form.",
            level="warning",
        )
        return repaired, [warning]
    return text, []


def find_form(project: Project, xml_form_id: str) -> Form | None:
    return db.session.scalar(
        select(Form).where(Form.project_id == project.id, Form.xml_form_id == xml_form_id)
    )


def get_form(project: Project, xml_form_id: str) -> Form:
    form = find_form(project, xml_form_id)
    if form is None:
        raise FormNotFound(xml_form_id)
    return form


def _new_def(form: Form, prepared: PreparedForm, user: User | None) -> FormDef:
    xml, public_key = with_project_key(form.project_id, prepared.xml, prepared.info.public_key)
    served = xml.encode("utf-8")
    source = prepared.source
    suffix = PurePath(source.filename).suffix.lower()
    blob = store_blob(
        source.content,
        source.content_type or SPREADSHEET_CONTENT_TYPES.get(suffix, "application/octet-stream"),
    )
    previous = form.current_def
    form_def = FormDef(
        version=prepared.info.version,
        title=prepared.info.title,
        xml=xml,
        xml_md5=hashlib.md5(served).hexdigest(),  # noqa: S324 - OpenRosa's checksum
        xml_sha256=hashlib.sha256(served).hexdigest(),
        public_key=public_key,
        source_blob=blob,
        source_filename=PurePath(source.filename).name,
        warnings=[p.as_dict() for p in prepared.warnings],
        case_mapping=prepared.case_mapping,
        created_by_id=user.id if user else None,
    )
    form.defs.append(form_def)
    carried = {a.name: a for a in previous.attachments} if previous else {}
    for name, kind in prepared.info.media:
        old = carried.get(name)
        same = old is not None and old.type == kind
        form_def.attachments.append(
            FormAttachment(
                name=name,
                type=kind,
                blob=old.blob if same else None,
                updated_at=old.updated_at if same else None,
            )
        )
    return form_def


def create_form(
    project: Project,
    prepared: PreparedForm,
    *,
    publish: bool,
    user: User | None = None,
    media: list[Upload] = (),
) -> PublishResult:
    """POST /v1/projects/{id}/forms: a new form, as a draft or published at once."""
    if find_form(project, prepared.info.form_id) is not None:
        raise FormConflict(
            f"A form with the id '{prepared.info.form_id}' already exists in this project. "
            "Upload a new version of it as a draft instead."
        )
    form = Form(project_id=project.id, xml_form_id=prepared.info.form_id, state=FormState.OPEN)
    db.session.add(form)
    form_def = _new_def(form, prepared, user)
    for upload in media:
        attach_media(form_def, upload)
    if publish:
        publish_draft(form)
    db.session.flush()
    return PublishResult(form=form, form_def=form_def, created=True, changed=True)


def replace_draft(
    form: Form, prepared: PreparedForm, *, user: User | None = None, media: list[Upload] = ()
) -> FormDef:
    """POST .../forms/{id}/draft: the upload becomes the (only) draft."""
    if prepared.info.form_id != form.xml_form_id:
        raise rejected(
            f"The uploaded form's id is '{prepared.info.form_id}' but this form is "
            f"'{form.xml_form_id}'. The form id cannot change between versions.",
            sheet="settings",
            column="form_id",
        )
    discard_draft(form)
    form_def = _new_def(form, prepared, user)
    for upload in media:
        attach_media(form_def, upload)
    db.session.flush()
    return form_def


def discard_draft(form: Form) -> None:
    draft = form.draft_def
    if draft is not None:
        form.defs.remove(draft)
        db.session.flush()


def _check_version_free(form: Form, form_def: FormDef) -> None:
    for published in form.published_defs:
        if published.version == form_def.version and published is not form_def:
            raise FormConflict(
                f"Version '{form_def.version}' of form '{form.xml_form_id}' is already "
                "published with different content. Phones cache forms by version: change "
                "the version (settings sheet, 'version' column) and upload again."
            )


def publish_draft(form: Form, version: str | None = None) -> FormDef:
    """Publish the draft; `version` rewrites the XForm's version first, as Central does."""
    draft = form.draft_def
    if draft is None:
        raise FormNotFound(f"Form '{form.xml_form_id}' has no draft to publish.")
    if version is not None and version != draft.version:
        _set_version(draft, version)
    _check_version_free(form, draft)
    draft.published_at = datetime.now(UTC).replace(tzinfo=None)
    db.session.flush()
    return draft


def _set_version(form_def: FormDef, version: str) -> None:
    root = parse_xml_safely(form_def.xml.encode("utf-8"))
    instance_root = primary_instance_root(root)
    instance_root.attrib.pop("{http://openrosa.org/xforms}version", None)
    instance_root.set("version", version)
    xml = etree.tostring(root, encoding="unicode")
    served = xml.encode("utf-8")
    form_def.xml = xml
    form_def.version = version
    form_def.xml_md5 = hashlib.md5(served).hexdigest()  # noqa: S324
    form_def.xml_sha256 = hashlib.sha256(served).hexdigest()


def publish_form(
    project: Project,
    prepared: PreparedForm,
    *,
    user: User | None = None,
    media: list[Upload] = (),
    draft: bool = False,
) -> PublishResult:
    """Create or update a form from one upload: what the CLI and upload page do.

    Same version and same XForm as the published one: nothing changes (safe to repeat).
    Same version, different XForm: refused. New version: published beside the older ones.
    """
    form = find_form(project, prepared.info.form_id)
    if form is None:
        return create_form(project, prepared, publish=not draft, user=user, media=media)
    # As uploaded, or as served once the project's managed key is in (server.projects.keys).
    served_shas = {
        hashlib.sha256(xml.encode("utf-8")).hexdigest()
        for xml in (
            prepared.xml,
            with_project_key(project.id, prepared.xml, prepared.info.public_key)[0],
        )
    }
    for published in form.published_defs:
        if published.version != prepared.info.version:
            continue
        if published.xml_sha256 in served_shas and published is form.current_def:
            for upload in media:
                attach_media(published, upload)
            db.session.flush()
            return PublishResult(form, published, created=False, changed=bool(media))
        if published.xml_sha256 in served_shas:
            raise FormConflict(
                f"Version '{published.version}' of form '{form.xml_form_id}' is an older "
                "published version; give this upload a new version to publish it again."
            )
        raise FormConflict(
            f"Version '{prepared.info.version}' of form '{form.xml_form_id}' is already "
            "published with different content. Phones cache forms by version: change "
            "the version (settings sheet, 'version' column) and upload again."
        )
    form_def = replace_draft(form, prepared, user=user, media=media)
    if not draft:
        publish_draft(form)
    return PublishResult(form, form_def, created=False, changed=True)


def record_published(
    form: Form, form_def: FormDef, user_id: int | None, address: str | None
) -> None:
    """The audit event for a version going live (page or API); the caller commits."""
    audit.record(
        "form.publish",
        user_id=user_id,
        object_type="form",
        object_id=form.id,
        address=address,
        details={
            "project_id": form.project_id,
            "xml_form_id": form.xml_form_id,
            "version": form_def.version,
        },
    )


def record_form_change(
    action: str, form: Form, user_id: int | None, address: str | None, **details
) -> None:
    """`form.state` (before, after) or `form.media` (the file names the form asked for);
    the caller commits."""
    audit.record(
        action,
        user_id=user_id,
        object_type="form",
        object_id=form.id,
        address=address,
        details={"project_id": form.project_id, "xml_form_id": form.xml_form_id, **details},
    )


def attach_media(form_def: FormDef, upload: Upload) -> FormAttachment:
    """Store a media file the form names; refuse names it does not name."""
    name = PurePath(upload.filename).name
    if not ATTACHMENT_NAME.match(upload.filename) or upload.filename in (".", ".."):
        raise rejected(f"'{upload.filename}' is not a plain file name.")
    attachment = next((a for a in form_def.attachments if a.name == name), None)
    if attachment is None:
        expected = ", ".join(a.name for a in form_def.attachments) or "none"
        raise AttachmentNotExpected(
            f"The form does not use a media file named '{name}' (it expects: {expected})."
        )
    if not form_def.is_draft and form_def.form.current_def is not form_def:
        raise FormConflict("Media of an older published version cannot be changed.")
    attachment.blob = store_blob(upload.content, upload.content_type or _guess_type(name))
    attachment.updated_at = datetime.now(UTC).replace(tzinfo=None)
    return attachment


@dataclass(frozen=True)
class MediaFile:
    content: bytes
    content_type: str
    md5: str


def media_file(form_def: FormDef, name: str) -> MediaFile | None:
    """The bytes phones get for a form's media file: uploaded, or an entity list."""
    attachment = next((a for a in form_def.attachments if a.name == name), None)
    if attachment is None:
        return None
    if attachment.dataset is not None:
        listed = entity_list.case_list(form_def.form.project_id)
        return MediaFile(listed.content, "text/csv; charset=utf-8", listed.md5)
    if attachment.blob is None:
        return None
    return MediaFile(attachment.blob.content, attachment.blob.content_type, attachment.blob.md5)


def _guess_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def set_state(form: Form, state: str, user_id: int | None, address: str | None) -> None:
    """Open, closing or closed; a change is audited `form.state` (the caller commits)."""
    before = form.state
    try:
        form.state = FormState(state).value
    except ValueError:
        raise rejected(
            f"'{state}' is not a form state; use one of: open, closing, closed."
        ) from None
    if form.state != before:
        record_form_change("form.state", form, user_id, address, before=before, after=form.state)
