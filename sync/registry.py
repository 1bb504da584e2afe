"""The mission registry: which missions exist, the countries they serve, how to reach them.

One JSON file per deployment (`MISSIONS_FILE`, default `config/missions.json`), written by
`casebridge missions add|init|remove` and readable by hand:

    {
      "format": "casebridge-missions/1",
      "missions": {
        "KHM": {
          "name": "IOM Cambodia",
          "countries": ["KHM"],
          "base_url": "https://khm.example.org",
          "public_key": "<base64 of the raw 32-byte Ed25519 public key>",
          "fields": ["prs_Gender", "prs_Citizenship", "hte_Country"]
        }
      }
    }

`fields` is the allow-list of what this mission may send to that one (default deny: an
empty list sends no case fields at all). This node's own entry (code = MISSION_CODE), if
present, gives the countries it serves; its `fields` are unused.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pycountry
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import current_app

from server.cases.fields import CHILD_FIELDS, FIELDS

REGISTRY_FORMAT = "casebridge-missions/1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Short upper-case codes, as stored in cases.owner_mission (16 characters at most).
MISSION_CODE = re.compile(r"^[A-Z][A-Z0-9_-]{1,15}$")


class RegistryError(ValueError):
    """The registry file or a value given for it is unusable; the message says why."""


def shareable_field_names() -> set[str]:
    """Every case field a link's allow-list may name: the known fields not local-only."""
    names = {f.name for f in FIELDS.values() if not f.local_only}
    for fields in CHILD_FIELDS.values():
        names.update(f.name for f in fields.values() if not f.local_only)
    return names


@dataclass(frozen=True)
class Mission:
    code: str
    name: str
    countries: tuple[str, ...]
    base_url: str
    #: base64 of the raw 32-byte Ed25519 public key.
    public_key: str
    #: The allow-list: fields this node may send to the mission.
    fields: frozenset[str] = field(default_factory=frozenset)

    def verifying_key(self) -> Ed25519PublicKey:
        return parse_public_key(self.public_key)

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "countries": list(self.countries),
            "base_url": self.base_url,
            "public_key": self.public_key,
            "fields": sorted(self.fields),
        }


@dataclass(frozen=True)
class Registry:
    missions: dict[str, Mission] = field(default_factory=dict)

    def get(self, code: str) -> Mission | None:
        return self.missions.get(code)

    def serving(self, country: str) -> list[Mission]:
        """The missions that serve `country`, by code."""
        return [m for _, m in sorted(self.missions.items()) if country in m.countries]


# ---- checking values ------------------------------------------------------------------


def check_code(code: str) -> str:
    if not MISSION_CODE.match(code or ""):
        raise RegistryError(
            f"Mission code {code!r}: use 2-16 upper-case letters, digits, '-' or '_' (e.g. THA)."
        )
    return code


def check_countries(codes: list[str] | tuple[str, ...] | str) -> tuple[str, ...]:
    """ISO 3166-1 alpha-3 codes, upper-cased, in order, without repeats."""
    if isinstance(codes, str):
        codes = codes.split(",")
    result: list[str] = []
    for raw in codes:
        code = raw.strip().upper()
        if not code:
            continue
        if len(code) != 3 or pycountry.countries.get(alpha_3=code) is None:
            raise RegistryError(f"Unknown country code {raw.strip()!r} (ISO 3166-1 alpha-3).")
        if code not in result:
            result.append(code)
    if not result:
        raise RegistryError("A mission serves at least one country.")
    return tuple(result)


#: Hosts a batch may reach over plain http: this machine only (missions side by side in
#: development and tests). Anything else carries personal data across borders: https.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def check_url(url: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RegistryError(f"Base URL {url!r}: give https://host[:port][/path].")
    if parts.query or parts.fragment:
        raise RegistryError(f"Base URL {url!r}: no query or fragment.")
    return url.rstrip("/")


def check_transport(url: str) -> str:
    if not encrypted_or_local(url):
        raise RegistryError(
            f"Base URL {url!r}: use https (plain http only to this machine: localhost, "
            "127.0.0.1): cases travel with personal data."
        )
    return url


def encrypted_or_local(url: str) -> bool:
    """https, or http to this machine: the only ways a batch may travel."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return parts.scheme == "https" or (
        parts.scheme == "http" and (host in LOOPBACK_HOSTS or host.startswith("127."))
    )


def parse_public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text or "", validate=True)
    except (binascii.Error, ValueError):
        raise RegistryError("Public key: not base64.") from None
    if len(raw) != 32:
        raise RegistryError("Public key: an Ed25519 key is 32 bytes (44 base64 characters).")
    return Ed25519PublicKey.from_public_bytes(raw)


def check_fields(names: list[str] | tuple[str, ...] | str) -> frozenset[str]:
    if isinstance(names, str):
        names = names.split(",")
    wanted = {n.strip() for n in names if n.strip()}
    local = sorted(n for n in wanted if _is_local_only(n))
    if local:
        raise RegistryError(f"Local-only fields never leave this mission: {', '.join(local)}.")
    unknown = sorted(wanted - shareable_field_names())
    if unknown:
        raise RegistryError(f"Unknown case fields: {', '.join(unknown)}.")
    return frozenset(wanted)


def _is_local_only(name: str) -> bool:
    specs = [FIELDS.get(name)] + [fields.get(name) for fields in CHILD_FIELDS.values()]
    return any(spec is not None and spec.local_only for spec in specs)


def make_mission(
    code: str,
    *,
    name: str,
    countries,
    base_url: str,
    public_key: str,
    fields=(),
    new_entry: bool = True,
) -> Mission:
    """A Mission from user input, every value checked; RegistryError says what is wrong.

    A new entry's base URL must be https (or this machine); an entry read from the file
    is taken as it is, and delivery refuses to send over plain http (sync.delivery)."""
    name = (name or "").strip()
    if not name:
        raise RegistryError("A mission needs a name.")
    public_key = (public_key or "").strip()
    parse_public_key(public_key)
    return Mission(
        code=check_code(code),
        name=name,
        countries=check_countries(countries),
        base_url=check_transport(check_url(base_url)) if new_entry else check_url(base_url),
        public_key=public_key,
        fields=check_fields(fields),
    )


# ---- the file -------------------------------------------------------------------------


def registry_path() -> Path:
    configured = current_app.config.get("MISSIONS_FILE")
    return Path(configured) if configured else PROJECT_ROOT / "config" / "missions.json"


def load_registry(path: Path | None = None) -> Registry:
    """The registry in `path` (default: the app's); a missing file is an empty registry."""
    path = path or registry_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Registry()
    except (OSError, ValueError) as error:
        raise RegistryError(f"{path}: not readable as JSON ({error}).") from None
    if not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT:
        raise RegistryError(f"{path}: not a {REGISTRY_FORMAT} file.")
    missions = {}
    for code, entry in (data.get("missions") or {}).items():
        try:
            missions[code] = make_mission(code, **entry, new_entry=False)
        except (RegistryError, TypeError) as error:
            raise RegistryError(f"{path}: mission {code}: {error}") from None
    return Registry(missions)


def save_registry(registry: Registry, path: Path | None = None) -> None:
    """Write atomically (a temporary file renamed over the old one)."""
    path = path or registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "format": REGISTRY_FORMAT,
        "missions": {code: registry.missions[code].as_json() for code in sorted(registry.missions)},
    }
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".missions-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2, ensure_ascii=False)
        out.write("\n")
    os.replace(temporary, path)


def add_mission(registry: Registry, mission: Mission, *, replace: bool = False) -> Registry:
    if mission.code in registry.missions and not replace:
        raise RegistryError(f"Mission {mission.code} is already registered.")
    return Registry({**registry.missions, mission.code: mission})


def remove_mission(registry: Registry, code: str) -> Registry:
    if code not in registry.missions:
        raise RegistryError(f"No mission {code} in the registry.")
    return Registry({k: v for k, v in registry.missions.items() if k != code})
