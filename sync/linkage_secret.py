"""The linkage secret: the key of the record-linkage encodings, shared by linked missions.

One secret for a group of linked missions (every mission whose persons may be compared
holds the same one), kept in a file readable by the service user only (mode 0600,
`LINKAGE_KEY_FILE`, default `instance/linkage.key`): base64 of 32 random bytes. One
mission makes it (`casebridge missions linkage-key generate`), the others import it from a
copy carried by hand or over an encrypted channel (`casebridge missions linkage-key set <
FILE`); it is never sent by sync, printed or logged. Missions compare fingerprints
(`casebridge missions linkage-key show`) to see that they hold the same secret.

Without the file, linkage is off: no encodings are sent, and a peer's case becomes a new
case with a person of its own, as before.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from pathlib import Path

from flask import current_app

FILE_NAME = "linkage.key"
SECRET_BYTES = 32


class LinkageSecretError(RuntimeError):
    """The secret file is unreadable, malformed, or would be overwritten."""


def linkage_secret_path() -> Path:
    configured = current_app.config.get("LINKAGE_KEY_FILE")
    return Path(configured) if configured else Path(current_app.instance_path) / FILE_NAME


def fingerprint(secret: bytes) -> str:
    """16 hex characters naming the secret without revealing it: the same on every
    mission that holds it; stored with each encoding, so a new secret means re-encoding."""
    return hmac.digest(secret, b"casebridge-linkage/v1/fingerprint", "sha256").hex()[:16]


def parse_secret(text: str) -> bytes:
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise LinkageSecretError("A linkage secret is base64 text.") from None
    if len(secret) < SECRET_BYTES:
        raise LinkageSecretError(f"A linkage secret has at least {SECRET_BYTES} bytes.")
    return secret


def load_linkage_secret(path: Path | None = None) -> bytes | None:
    """The secret, or None when this mission has none (linkage off)."""
    path = path or linkage_secret_path()
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        raise LinkageSecretError(f"{path}: not readable.") from None
    return parse_secret(text)


def write_linkage_secret(secret: bytes, path: Path, *, replace: bool = False) -> None:
    """Write the secret (mode 0600). Replacing one obliges every linked mission to take
    the new one, and this mission to encode its persons again (`casebridge sync encode`)."""
    if len(secret) < SECRET_BYTES:
        raise LinkageSecretError(f"A linkage secret has at least {SECRET_BYTES} bytes.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not replace:
        raise LinkageSecretError(
            f"{path} exists: this mission has a linkage secret (--replace to change it)."
        )
    temporary = path.with_name(f".{path.name}.new")
    temporary.unlink(missing_ok=True)
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "w", encoding="ascii") as out:
        out.write(base64.b64encode(secret).decode("ascii") + "\n")
    os.replace(temporary, path)


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)
