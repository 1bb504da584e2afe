"""Missions for sync tests: key pairs, a registry file, and pointing the app at them."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.keys import public_key_text
from sync.registry import Mission, Registry, make_mission, save_registry

COUNTRIES = {"THA": "THA", "KHM": "KHM", "MMR": "MMR", "LAO": "LAO", "MYS": "MYS"}


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def mission(code: str, key: Ed25519PrivateKey, fields=(), countries=None, url=None) -> Mission:
    return make_mission(
        code,
        name=f"Mission {code}",
        countries=countries or [COUNTRIES[code]],
        base_url=url or f"https://{code.lower()}.example.org",
        public_key=public_key_text(key.public_key()),
        fields=fields,
    )


def write_key(path: Path, key: Ed25519PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def use_missions(
    monkeypatch,
    app,
    folder: Path,
    own_code: str,
    missions: list[Mission],
    own_key: Ed25519PrivateKey | None = None,
) -> Registry:
    """Make `app` the node of `own_code`, with a registry of `missions` under `folder`, and
    its private key if given (its inbox signs receipts with it; without one it takes no
    batch, and its deliveries stop before sending: no test reaches for the network)."""
    registry = Registry({m.code: m for m in missions})
    save_registry(registry, folder / f"missions-{own_code}.json")
    monkeypatch.setitem(app.config, "MISSION_CODE", own_code)
    monkeypatch.setitem(app.config, "MISSIONS_FILE", str(folder / f"missions-{own_code}.json"))
    if own_key is not None:
        key_file = write_key(folder / f"{own_code}.pem", own_key)
        monkeypatch.setitem(app.config, "MISSION_KEY_FILE", str(key_file))
    return registry


def as_khm_knowing_tha(monkeypatch, app, folder: Path, tha_key: Ed25519PrivateKey) -> None:
    """Make `app` KHM, whose registry knows THA by `tha_key`; it signs its receipts with a
    key of its own."""
    khm_key = new_key()
    use_missions(
        monkeypatch,
        app,
        folder,
        "KHM",
        [mission("THA", tha_key), mission("KHM", khm_key)],
        own_key=khm_key,
    )
