"""OpenRosa for ODK Collect and Enketo: form lists, downloads, manifests, submissions.

Three doors, as in ODK Central and Kobo: `/v1/projects/{id}/...` and `/formList`,
`/submission` at the root for password users (Digest), and `/v1/key/{token}/projects/{id}/...`
for app users (a token in the URL; a bad token gets 403 so the phone does not prompt).
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, current_app, g, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from server import cache
from server.appusers.models import AppUserForm
from server.appusers.operations import AppUserRef, app_user_for_token, token_hash
from server.cases import entity_list
from server.extensions import db
from server.forms.models import EMPTY_VERSION_IN_URL, Form, FormDef, FormState
from server.forms.operations import media_file
from server.openrosa import responses
from server.openrosa.auth import collector_required
from server.openrosa.multipart import posted_files
from server.projects.operations import visible_projects
from server.security import current_user
from server.submissions import operations as subs
from server.submissions import queueing
from server.submissions.instance import BadSubmission

openrosa = Blueprint("openrosa", __name__)

LISTED_STATES = (FormState.OPEN,)
DOWNLOADABLE_STATES = (FormState.OPEN, FormState.CLOSING)


# ---- who is asking, and what they may reach -------------------------------------------


class Scope:
    """The forms a caller may reach, and how to spell URLs back to them."""

    def __init__(self, project_ids: list[int], prefix_for, app_user: AppUserRef | None = None):
        self.project_ids = project_ids
        self.prefix_for = prefix_for  # project id -> URL prefix ("/v1/projects/1")
        self.app_user = app_user  # app users reach only the forms they were given

    def forms(self, xml_form_id: str | None = None, with_versions: bool = True) -> list[Form]:
        """The forms the caller may reach, with their versions unless told not to."""
        query = select(Form).where(Form.project_id.in_(self.project_ids))
        if with_versions:
            query = query.options(selectinload(Form.defs))
        if self.app_user is not None:
            query = query.join(
                AppUserForm,
                (AppUserForm.form_id == Form.id) & (AppUserForm.app_user_id == self.app_user.id),
            )
        if xml_form_id is not None:
            query = query.where(Form.xml_form_id == xml_form_id)
        return list(db.session.scalars(query.order_by(Form.project_id, Form.xml_form_id)))

    def form(self, xml_form_id: str) -> Form | None:
        return next(iter(self.forms(xml_form_id)), None)

    def form_for_submission(self, xml_form_id: str) -> subs.FormRef | None:
        """Receiving needs the form's id and state only; remembered between requests."""
        app_user_id = self.app_user.id if self.app_user is not None else None
        key = ("form", tuple(self.project_ids), app_user_id, xml_form_id)
        return cache.remembered(key, lambda: self._form_ref(xml_form_id))

    def _form_ref(self, xml_form_id: str) -> subs.FormRef | None:
        form = next(iter(self.forms(xml_form_id, with_versions=False)), None)
        return subs.FormRef(form.id, form.xml_form_id, form.state) if form else None

    def dataset_url(self, project_id: int, dataset: str) -> str:
        base = request.host_url.rstrip("/")
        prefix = self.prefix_for(project_id)
        return f"{base}{prefix}/datasets/{quote(dataset, safe='')}/integrity"

    def url(self, form: Form, tail: str) -> str:
        base = request.host_url.rstrip("/")
        prefix = self.prefix_for(form.project_id)
        return f"{base}{prefix}/forms/{quote(form.xml_form_id, safe='')}{tail}"


def _password_scope(project_id: int | None) -> Scope | Response:
    user = current_user()
    projects = visible_projects(user)
    if project_id is not None:
        projects = [p for p in projects if p.id == project_id]
        if not projects:
            return responses.message("You may not fill forms in this project.", 403)
    return Scope([p.id for p in projects], lambda pid: f"/v1/projects/{pid}")


def _app_user_scope(token: str, project_id: int) -> Scope | Response:
    app_user = cache.remembered(
        ("app-user", token_hash(token), project_id),
        lambda: app_user_for_token(token, project_id),
    )
    if app_user is None:
        # 403, not 401: a prompt for a password would only confuse the interviewer.
        return responses.message(
            "This phone's access was revoked or is not valid. Scan a new QR code from your "
            "coordinator.",
            403,
        )
    return Scope([project_id], lambda pid: f"/v1/key/{token}/projects/{pid}", app_user=app_user)


# ---- form list, downloads, manifests ---------------------------------------------------


def _form_list(scope: Scope) -> Response:
    wanted = request.args.get("formID")
    all_versions = request.args.get("listAllVersions", "").lower() == "true"
    entries = []
    for form in scope.forms(wanted):
        if form.state not in LISTED_STATES or form.current_def is None:
            continue
        defs = form.published_defs if all_versions else [form.current_def]
        for form_def in defs:
            is_current = form_def is form.current_def
            version_path = quote(form_def.version or EMPTY_VERSION_IN_URL, safe="")
            tail = ".xml" if is_current else f"/versions/{version_path}.xml"
            entries.append(
                responses.FormListEntry(
                    form_id=form.xml_form_id,
                    name=form_def.title,
                    version=form_def.version,
                    md5=form_def.xml_md5,
                    download_url=scope.url(form, tail),
                    manifest_url=scope.url(form, "/manifest") if form_def.attachments else None,
                )
            )
    verbose = request.args.get("verbose", "").lower() == "true"
    return responses.form_list(entries, verbose=verbose)


def _downloadable(scope: Scope, xml_form_id: str) -> Form:
    form = scope.form(xml_form_id)
    if form is None or form.state not in DOWNLOADABLE_STATES or form.current_def is None:
        abort(404)
    return form


def _xml(form_def: FormDef | None) -> Response:
    if form_def is None:
        abort(404)
    response = Response(form_def.xml.encode("utf-8"), content_type=responses.XML_CONTENT_TYPE)
    response.headers.update(responses.openrosa_headers())
    response.set_etag(form_def.xml_md5)
    return response.make_conditional(request)


def _manifest(scope: Scope, xml_form_id: str) -> Response:
    form = _downloadable(scope, xml_form_id)
    entries = []
    for attachment in form.current_def.attachments:
        download_url = scope.url(form, f"/attachments/{quote(attachment.name, safe='')}")
        if attachment.dataset is not None:
            entries.append(
                responses.ManifestEntry(
                    filename=attachment.name,
                    md5=entity_list.case_list(form.project_id).md5,
                    download_url=download_url,
                    integrity_url=scope.dataset_url(form.project_id, attachment.dataset),
                )
            )
        elif attachment.blob is not None:
            entries.append(
                responses.ManifestEntry(attachment.name, attachment.blob.md5, download_url)
            )
    return responses.manifest(entries)


def _media(scope: Scope, xml_form_id: str, name: str) -> Response:
    form = _downloadable(scope, xml_form_id)
    media = media_file(form.current_def, name)
    if media is None:
        abort(404)
    response = Response(media.content, content_type=media.content_type)
    response.headers.update(responses.openrosa_headers())
    response.set_etag(media.md5)
    return response.make_conditional(request)


def _integrity(scope: Scope, dataset: str) -> Response:
    """Which entities of the list a phone holds are gone (Collect asks before using it)."""
    if dataset not in entity_list.ENTITY_LISTS.values() or len(scope.project_ids) != 1:
        abort(404)
    uses_the_list = any(
        attachment.dataset == dataset
        for form in scope.forms()
        if form.state in DOWNLOADABLE_STATES and form.current_def is not None
        for attachment in form.current_def.attachments
    )
    if not uses_the_list:
        abort(404)  # only a phone given a form that uses the list may ask about it
    ids = request.args.get("id", "").split(",")
    return responses.entity_integrity(entity_list.deleted_states(scope.project_ids[0], ids))


# ---- submissions -------------------------------------------------------------------------


def _submission(scope: Scope) -> Response:
    if request.method == "HEAD":
        return Response(status=204, headers=responses.openrosa_headers())
    limit = current_app.config["OPENROSA_MAX_SUBMISSION_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return responses.message(
            f"This submission is larger than the {limit // 1_000_000} MB the server accepts.", 413
        )
    if request.mimetype != "multipart/form-data":
        return responses.message("Submissions must be sent as multipart/form-data.", 400)
    posted = posted_files(request)
    xml_part = posted.get("xml_submission_file")
    if xml_part is None:
        return responses.message("The submission has no xml_submission_file part.", 400)
    files = [
        subs.IncomingFile(storage.filename or name, storage.stream, storage.mimetype)
        for name, storage in posted.items(multi=True)
        if name != "xml_submission_file"
    ]
    user = current_user() if scope.app_user is None else None
    submitter = subs.Submitter(
        user_id=user.id if user is not None else None,
        app_user_id=scope.app_user.id if scope.app_user is not None else None,
        device_id=(request.args.get("deviceID") or "")[:255] or None,
    )
    xml = xml_part.read(limit + 1)
    for attempt in (1, 2):
        try:
            receipt = subs.receive(
                xml, files, find_form=scope.form_for_submission, submitter=submitter
            )
            db.session.commit()
            break
        except (subs.SubmissionRefused, BadSubmission) as refusal:
            db.session.rollback()
            return responses.message(str(refusal), getattr(refusal, "status", 400))
        except IntegrityError:
            # The same submission arrived twice at once (a phone retrying): the other
            # request stored it; receiving again now finds it and answers as a retry.
            db.session.rollback()
            if attempt == 2:
                raise
    if receipt.queue_key is not None:
        queueing.wake_after_commit(receipt.queue_key)
    return responses.message(receipt.message, 201, nature="submit_success")


# ---- routes ------------------------------------------------------------------------------


def _scope_or_response(project_id: int | None = None, token: str | None = None):
    if token is not None:
        return _app_user_scope(token, project_id)
    return _password_scope(project_id)


def _with_scope(handler, project_id=None, token=None, *args):
    scope = _scope_or_response(project_id, token)
    if isinstance(scope, Response):
        return scope
    g.openrosa_scope = scope
    return handler(scope, *args)


@openrosa.get("/formList")
@collector_required
def root_form_list():
    return _with_scope(_form_list)


@openrosa.route("/submission", methods=["HEAD", "POST"])
@collector_required
def root_submission():
    return _with_scope(_submission)


@openrosa.get("/v1/projects/<int:project_id>/formList")
@collector_required
def project_form_list(project_id: int):
    return _with_scope(_form_list, project_id)


@openrosa.route("/v1/projects/<int:project_id>/submission", methods=["HEAD", "POST"])
@collector_required
def project_submission(project_id: int):
    return _with_scope(_submission, project_id)


@openrosa.get("/v1/projects/<int:project_id>/forms/<xml_form_id>/manifest")
@collector_required
def project_manifest(project_id: int, xml_form_id: str):
    return _with_scope(_manifest, project_id, None, xml_form_id)


@openrosa.get("/v1/projects/<int:project_id>/datasets/<dataset>/integrity")
@collector_required
def project_integrity(project_id: int, dataset: str):
    return _with_scope(_integrity, project_id, None, dataset)


@openrosa.get("/v1/key/<token>/projects/<int:project_id>/datasets/<dataset>/integrity")
def key_integrity(token: str, project_id: int, dataset: str):
    return _with_scope(_integrity, project_id, token, dataset)


@openrosa.get("/v1/key/<token>/projects/<int:project_id>/formList")
def key_form_list(token: str, project_id: int):
    return _with_scope(_form_list, project_id, token)


@openrosa.route("/v1/key/<token>/projects/<int:project_id>/submission", methods=["HEAD", "POST"])
def key_submission(token: str, project_id: int):
    return _with_scope(_submission, project_id, token)


@openrosa.get("/v1/key/<token>/projects/<int:project_id>/forms/<xml_form_id>.xml")
def key_form_xml(token: str, project_id: int, xml_form_id: str):
    return _with_scope(
        lambda s, f: _xml(_downloadable(s, f).current_def), project_id, token, xml_form_id
    )


@openrosa.get(
    "/v1/key/<token>/projects/<int:project_id>/forms/<xml_form_id>/versions/<version>.xml"
)
def key_version_xml(token: str, project_id: int, xml_form_id: str, version: str):
    def handler(scope, form_id, wanted):
        return _xml(_downloadable(scope, form_id).published_version(wanted))

    return _with_scope(handler, project_id, token, xml_form_id, version)


@openrosa.get("/v1/key/<token>/projects/<int:project_id>/forms/<xml_form_id>/manifest")
def key_manifest(token: str, project_id: int, xml_form_id: str):
    return _with_scope(_manifest, project_id, token, xml_form_id)


@openrosa.get("/v1/key/<token>/projects/<int:project_id>/forms/<xml_form_id>/attachments/<name>")
def key_media(token: str, project_id: int, xml_form_id: str, name: str):
    return _with_scope(_media, project_id, token, xml_form_id, name)
