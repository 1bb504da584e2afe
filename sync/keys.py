"""This mission's Ed25519 signing key: one PEM file, readable by the service user only."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from flask import current_app

KEY_FILE_NAME = "mission_ed25519.pem"


class KeyFileError(RuntimeError):
    """The key file is missing, unreadable, or would be overwritten."""


def mission_key_path() -> Path:
    configured = current_app.config.get("MISSION_KEY_FILE")
    return Path(configured) if configured else Path(current_app.instance_path) / KEY_FILE_NAME


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """base64 of the raw 32 bytes: the form the registry holds."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def create_mission_key(path: Path) -> Ed25519PublicKey:
    """Write a new private key to `path` (mode 0600, never over an existing file)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path} exists: this mission already has a key (delete it first to make a new "
            "one, then give the new public key to every linked mission)."
        ) from None
    with os.fdopen(handle, "wb") as out:
        out.write(pem)
    return key.public_key()


def load_mission_key(path: Path | None = None) -> Ed25519PrivateKey:
    path = path or mission_key_path()
    try:
        pem = path.read_bytes()
    except OSError:
        raise KeyFileError(
            f"No mission key at {path}: run `casebridge missions init` first."
        ) from None
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} does not hold an Ed25519 private key.")
    return key
