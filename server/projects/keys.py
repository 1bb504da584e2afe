"""Managed encryption, as ODK Central does it: one key pair per project, its private half
locked under a passphrase that only the project's administrators know.

Once a project has a key, every form version published to it carries the public key in
`<submission base64RsaPublicKey="...">`, so ODK Collect encrypts each submission on the
phone. Forms that bring their own key keep it (Central does the same).

Already-published versions are not re-versioned here (Central appends "[encrypted:...]" to
every form's version at once): the XForm as published stays what phones have, re-running
`casebridge forms publish` / `setup` on the same files stays "unchanged", and each form is
encrypted from its next published version. `unencrypted_forms` lists the forms still
waiting for one. Drafts are encrypted at once, as in Central, since no phone has them.

How the worker gets at the private key without a human is in server.submissions.decryption.
"""

from __future__ import annotations

import hashlib
import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import current_app
from lxml import etree
from sqlalchemy import select

from server.auth.models import User
from server.extensions import db
from server.forms.models import Form, FormDef
from server.forms.xform import NS, XF, parse_xml_safely
from server.projects.models import Project, ProjectKey
from server.submissions.encryption import (
    PBKDF2_ITERATIONS,
    ManagedKey,
    generate_managed_key,
    public_key_base64_for_xform,
    unlock_private_key,
)

#: As Central's frontend asks; a short passphrase falls to a guess despite PBKDF2.
MIN_PASSPHRASE_LENGTH = 10
MAX_HINT_LENGTH = 1000
_XML_DECLARATION = re.compile(r"\s*<\?xml[^>]*\?>\s*")


class KeyAlreadyActive(Exception):
    """The project already has a managed key (HTTP 409, Central's 409.4)."""


class PassphraseRefused(ValueError):
    """The passphrase or hint cannot be used (HTTP 400)."""


# ---- the key ---------------------------------------------------------------------------


def active_key(project_id: int) -> ProjectKey | None:
    return db.session.scalar(
        select(ProjectKey).where(ProjectKey.project_id == project_id, ProjectKey.active)
    )


def create_managed_key(
    project: Project, passphrase: object, hint: object = None, *, user: User | None = None
) -> ProjectKey:
    """Turn on managed encryption for a project; the caller commits."""
    if not isinstance(passphrase, str) or len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise PassphraseRefused(
            f"The passphrase must be at least {MIN_PASSPHRASE_LENGTH} characters long."
        )
    if hint is not None and (not isinstance(hint, str) or len(hint) > MAX_HINT_LENGTH):
        raise PassphraseRefused(f"The hint must be text of at most {MAX_HINT_LENGTH} characters.")
    if active_key(project.id) is not None:
        raise KeyAlreadyActive(f"Project {project.id} already has managed encryption turned on.")
    iterations = current_app.config.get("KEY_PBKDF2_ITERATIONS", PBKDF2_ITERATIONS)
    managed = generate_managed_key(passphrase, hint or None, iterations=iterations)
    public_key = public_key_base64_for_xform(
        serialization.load_pem_public_key(managed.public_pem.encode("ascii"))
    )
    key = ProjectKey(
        project_id=project.id,
        public_pem=managed.public_pem,
        public_key=public_key,
        encrypted_private_key=managed.encrypted_private_key,
        salt=managed.salt,
        iv=managed.iv,
        iterations=managed.iterations,
        hint=managed.hint,
        created_by_id=user.id if user else None,
    )
    db.session.add(key)
    db.session.flush()
    _encrypt_drafts(project, public_key)
    return key


def unlock(key: ProjectKey, passphrase: str) -> rsa.RSAPrivateKey:
    """The private key, or WrongPassphrase. Keep the result in memory only."""
    managed = ManagedKey(
        public_pem=key.public_pem,
        encrypted_private_key=key.encrypted_private_key,
        salt=key.salt,
        iv=key.iv,
        iterations=key.iterations,
        hint=key.hint,
    )
    return unlock_private_key(managed, passphrase)


def unencrypted_forms(project: Project) -> list[Form]:
    """Forms whose current published version phones would still send unencrypted."""
    forms = db.session.scalars(
        select(Form).where(Form.project_id == project.id).order_by(Form.xml_form_id)
    )
    return [f for f in forms if f.current_def is not None and not f.current_def.public_key]


# ---- forms -----------------------------------------------------------------------------


def inject_public_key(xml: str, public_key: str) -> str:
    """The XForm with `<submission base64RsaPublicKey>` set, as pyxform writes it.

    An existing <submission> (auto-send, action) gains the attribute; otherwise one is made,
    first in the model, where pyxform puts it. Central splices the same attribute in.
    """
    root = parse_xml_safely(xml.encode("utf-8"))
    model = root.find("h:head/xf:model", NS)
    if model is None:
        return xml  # not an XForm; prepare_form has refused it already
    submission = model.find("xf:submission", NS)
    if submission is None:
        submission = etree.Element(f"{XF}submission")
        submission.tail = model.text
        model.insert(0, submission)
    submission.set("base64RsaPublicKey", public_key)
    declaration = _XML_DECLARATION.match(xml)
    prefix = declaration.group(0) if declaration else ""
    return prefix + etree.tostring(root, encoding="unicode")


def with_project_key(project_id: int, xml: str, public_key: str | None) -> tuple[str, str | None]:
    """(XForm, public key) as the project serves it: its managed key unless the form has one."""
    if public_key:
        return xml, public_key
    key = active_key(project_id)
    if key is None:
        return xml, None
    return inject_public_key(xml, key.public_key), key.public_key


def _encrypt_drafts(project: Project, public_key: str) -> None:
    drafts = db.session.scalars(
        select(FormDef)
        .join(Form)
        .where(
            Form.project_id == project.id,
            FormDef.published_at.is_(None),
            FormDef.public_key.is_(None),
        )
    )
    for draft in drafts:
        xml = inject_public_key(draft.xml, public_key)
        served = xml.encode("utf-8")
        draft.xml = xml
        draft.public_key = public_key
        draft.xml_md5 = hashlib.md5(served).hexdigest()  # noqa: S324 - OpenRosa's checksum
        draft.xml_sha256 = hashlib.sha256(served).hexdigest()
    db.session.flush()
