"""App users: create, grant forms, revoke, and the QR code that configures ODK Collect."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

import segno
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from sqlalchemy import select

from server import audit
from server.appusers.models import AppUser, AppUserForm
from server.extensions import db
from server.forms.models import Form
from server.projects.models import Project


class AppUserNotFound(Exception):
    pass


def _fernet() -> Fernet:
    key = hashlib.sha256(f"{current_app.config['SECRET_KEY']}|app-user-tokens".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_app_user(project: Project, display_name: str) -> tuple[AppUser, str]:
    """A new app user and its URL token (64 characters, as Central's)."""
    token = secrets.token_urlsafe(48)
    app_user = AppUser(
        project_id=project.id,
        display_name=display_name.strip()[:255] or "Phone",
        token_sha256=token_hash(token),
        token_encrypted=_fernet().encrypt(token.encode()).decode(),
    )
    db.session.add(app_user)
    db.session.flush()
    return app_user, token


def token_of(app_user: AppUser) -> str | None:
    if not app_user.active or not app_user.token_encrypted:
        return None
    try:
        return _fernet().decrypt(app_user.token_encrypted.encode()).decode()
    except InvalidToken:
        return None  # the SECRET_KEY changed: revoke and make a new app user


@dataclass(frozen=True)
class AppUserRef:
    """An active app user, as the OpenRosa doors need it (kept between requests: no ORM)."""

    id: int
    project_id: int


def app_user_for_token(token: str, project_id: int) -> AppUserRef | None:
    row = db.session.execute(
        select(AppUser.id, AppUser.project_id, AppUser.revoked_at).where(
            AppUser.token_sha256 == token_hash(token)
        )
    ).first()
    if row is None or row.revoked_at is not None or row.project_id != project_id:
        return None
    return AppUserRef(row.id, row.project_id)


def revoke(app_user: AppUser) -> None:
    """The token stops working at once; past submissions keep their submitter."""
    app_user.revoked_at = datetime.now(UTC).replace(tzinfo=None)
    app_user.token_sha256 = None
    app_user.token_encrypted = None


def record_app_user_change(
    action: str, app_user: AppUser, user_id: int | None, address: str | None
) -> None:
    """The audit event for creating or revoking an app user. Its display name is not kept:
    people name phones after whoever carries them."""
    audit.record(
        action,
        user_id=user_id,
        object_type="app_user",
        object_id=app_user.id,
        address=address,
        details={"project_id": app_user.project_id},
    )


def grant_form(app_user: AppUser, form: Form) -> bool:
    """Let the phone fetch and fill `form`; True if it could not before."""
    if form.project_id != app_user.project_id:
        raise AppUserNotFound("The form is in another project.")
    if db.session.get(AppUserForm, (app_user.id, form.id)) is not None:
        return False
    db.session.add(AppUserForm(app_user_id=app_user.id, form_id=form.id))
    db.session.flush()
    return True


def revoke_form(app_user: AppUser, form: Form) -> bool:
    """Take `form` from the phone; True if it had it."""
    access = db.session.get(AppUserForm, (app_user.id, form.id))
    if access is None:
        return False
    db.session.delete(access)
    return True


def record_form_access(
    app_user: AppUser,
    granted: list[int],
    revoked: list[int],
    user_id: int | None,
    address: str | None,
) -> None:
    """`app_user.forms`: the form ids a phone was given or lost, when any; the caller
    commits."""
    if not granted and not revoked:
        return
    audit.record(
        "app_user.forms",
        user_id=user_id,
        object_type="app_user",
        object_id=app_user.id,
        address=address,
        details={"project_id": app_user.project_id, "granted": granted, "revoked": revoked},
    )


def allowed_form_ids(app_user: AppUser) -> set[int]:
    return set(
        db.session.scalars(
            select(AppUserForm.form_id).where(AppUserForm.app_user_id == app_user.id)
        )
    )


def collect_settings(app_user: AppUser, project: Project, base_url: str) -> dict:
    """ODK Collect's settings for this app user, as Central's QR codes carry them."""
    token = token_of(app_user)
    if token is None:
        raise AppUserNotFound("This app user was revoked.")
    return {
        "general": {
            "server_url": f"{base_url.rstrip('/')}/v1/key/{token}/projects/{project.id}",
            "username": app_user.display_name,
            "form_update_mode": "match_exactly",
            "autosend": "wifi_and_cellular",
        },
        "project": {"name": project.name},
        "admin": {},
    }


def qr_payload(settings: dict) -> str:
    """Collect's QR format: base64 of zlib-compressed JSON."""
    compact = json.dumps(settings, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(compact)).decode()


def qr_image(settings: dict, kind: str = "png", scale: int = 6) -> bytes:
    buffer = io.BytesIO()
    segno.make(qr_payload(settings), error="l", micro=False).save(
        buffer, kind=kind, scale=scale, border=2
    )
    return buffer.getvalue()
