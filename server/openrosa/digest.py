"""HTTP Digest authentication (RFC 2617, MD5, qop=auth), as ODK Collect speaks it.

Nonces are stateless: base64 of "timestamp:random:hmac", signed with the app's secret, so
any web worker can check them. Replays are refused by remembering, per nonce, every nonce
count (nc) used, in Redis; an expired nonce gets `stale=true`, which makes the client
retry with a fresh one without asking the interviewer for the password again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')

#: Remember every nonce count used with a nonce, as long as the nonce is valid. A set, not
#: a high-water mark: Collect's parallel requests can arrive with their counts out of order.
_NC_SCRIPT = """
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return added
"""


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()  # noqa: S324 - RFC 2617 mandates MD5


def _sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()[:32]


def make_nonce(secret: str, now: float | None = None) -> str:
    payload = f"{int(now if now is not None else time.time())}:{secrets.token_hex(8)}"
    raw = f"{payload}:{_sign(secret, payload)}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def nonce_age(nonce: str, secret: str, now: float | None = None) -> float | None:
    """Seconds since the nonce was made, or None if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4)).decode()
        stamp, salt, signature = raw.split(":")
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(signature, _sign(secret, f"{stamp}:{salt}")):
        return None
    return (now if now is not None else time.time()) - int(stamp)


def challenge(realm: str, secret: str, stale: bool = False) -> str:
    header = (
        f'Digest realm="{realm}", qop="auth", algorithm=MD5, '
        f'nonce="{make_nonce(secret)}", opaque="{_md5(realm)}", domain="/"'
    )
    return header + (", stale=true" if stale else "")


def parse_authorization(header: str) -> dict[str, str] | None:
    if not header.lower().startswith("digest "):
        return None
    params = {}
    for key, quoted, bare in _PARAM.findall(header[7:]):
        params[key.lower()] = quoted.replace('\\"', '"') if quoted else bare
    return params


@dataclass
class DigestCheck:
    username: str | None
    ok: bool
    stale: bool = False
    reason: str = ""


def check(
    params: dict[str, str],
    *,
    method: str,
    request_uri: str,
    realm: str,
    secret: str,
    ha1_for,
    nonce_lifetime: float,
    remember_nc=None,
    now: float | None = None,
) -> DigestCheck:
    """Check a Digest `Authorization`; `ha1_for(username)` returns the stored HA1 or None."""
    username = params.get("username")
    required = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
    if any(not params.get(k) for k in required):
        return DigestCheck(username, False, reason="incomplete digest")
    if params["realm"] != realm or params["qop"] != "auth":
        return DigestCheck(username, False, reason="wrong realm or qop")
    if params.get("algorithm", "MD5").upper() != "MD5":
        return DigestCheck(username, False, reason="unsupported algorithm")
    if params["uri"] != request_uri:
        return DigestCheck(username, False, reason="uri mismatch")
    age = nonce_age(params["nonce"], secret, now)
    if age is None or age < -60:
        return DigestCheck(username, False, reason="unknown nonce")
    ha1 = ha1_for(username)
    if ha1 is None:
        return DigestCheck(username, False, reason="unknown user")
    ha2 = _md5(f"{method}:{params['uri']}")
    expected = _md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}")
    if not hmac.compare_digest(expected, params["response"].lower()):
        return DigestCheck(username, False, reason="wrong password")
    if age > nonce_lifetime:
        return DigestCheck(username, False, stale=True, reason="stale nonce")
    try:
        nc = int(params["nc"], 16)
    except ValueError:
        return DigestCheck(username, False, reason="bad nonce count")
    if remember_nc is not None and not remember_nc(params["nonce"], nc, nonce_lifetime):
        return DigestCheck(username, False, reason="replayed nonce count")
    return DigestCheck(username, True)


def redis_nc_tracker(connection):
    """remember_nc for `check`: True when this nc was not used with that nonce before."""
    script = connection.register_script(_NC_SCRIPT)

    def remember(nonce: str, nc: int, lifetime: float) -> bool:
        key = f"casebridge:digest-nc:{hashlib.sha256(nonce.encode()).hexdigest()[:32]}"
        return bool(script(keys=[key], args=[nc, int(lifetime) + 60]))

    return remember
