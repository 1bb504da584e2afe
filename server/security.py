"""Who is asking: a bearer token (API), a login session (pages), or Digest/Basic (phones)."""

from __future__ import annotations

import base64
import binascii
from functools import wraps

from flask import (
    Flask,
    abort,
    current_app,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select
from werkzeug.http import http_date

from server.auth import ratelimit
from server.auth.models import DIGEST_REALM, User
from server.auth.operations import (
    record_phone_login,
    record_phone_refusal,
    session_is_current,
    user_for_token,
)
from server.extensions import csrf, db, redis_connection
from server.openrosa import digest

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: No inline scripts or styles (page scripts are static files), no plugins, no framing,
#: forms post only back here.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
#: Sent only over https: a browser that saw it refuses plain http to this host for a year.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


class SessionCookies(SecureCookieSessionInterface):
    """The login cookie is Secure whenever the request came over https (behind a proxy: with
    TRUST_PROXY), not only when the config says so; HttpOnly and SameSite come from config."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)

    def open_session(self, app: Flask, request):
        """No cookie (phones, API clients): an empty session, without first building the
        signing serializer Flask makes anew on every request to check one."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    app.session_interface = SessionCookies()
    app.before_request(_load_user)
    app.before_request(_session_changes_need_the_csrf_token)
    app.after_request(_add_headers)


def _load_user() -> None:
    g.user = None
    g.by_session = False
    g.auth_stale = False
    g.auth_locked = False
    header = request.headers.get("Authorization", "")
    scheme = header.split(" ", 1)[0].lower()
    if scheme == "bearer":
        g.user = user_for_token(header[7:].strip())
    elif scheme == "digest":
        g.user = _digest_user(header)
    elif scheme == "basic":
        g.user = _basic_user(header)
    elif (user_id := session.get("user_id")) is not None:
        user = db.session.get(User, user_id)
        if session_is_current(user, session.get("generation")):
            g.user, g.by_session = user, True
        else:
            session.clear()  # reset, deactivated or removed: logged out


def _session_changes_need_the_csrf_token() -> None:
    """The API and OpenRosa views are CSRF-exempt: they expect a bearer token, Digest or a
    URL key, which a browser never adds by itself. Its login cookie it does add, so a change
    made with that cookie needs the page's CSRF token, whichever view it reaches."""
    if (
        g.by_session
        and request.method not in SAFE_METHODS
        and current_app.config.get("WTF_CSRF_ENABLED", True)
    ):
        csrf.protect()  # CSRFError: 400


def _find_active(name: str | None) -> User | None:
    if not name:
        return None
    return db.session.scalar(select(User).where(User.name == name, User.active))


def _refused(login: str, *, locked: bool, via: str) -> None:
    """Audited at once: the request ends in a 401 or 429 that commits nothing."""
    g.auth_locked = locked
    record_phone_refusal(login, request.remote_addr, locked=locked, via=via)
    db.session.commit()


def _digest_user(header: str) -> User | None:
    params = digest.parse_authorization(header) or {}
    login = params.get("username", "")
    if ratelimit.is_locked(login, request.remote_addr):
        _refused(login, locked=True, via="digest")
        return None
    users: dict[str, User | None] = {}

    def ha1_for(name: str) -> str | None:
        users[name] = _find_active(name)
        return users[name].digest_ha1 if users[name] is not None else None

    try:
        tracker = digest.redis_nc_tracker(redis_connection())
    except OSError:
        tracker = None
    result = digest.check(
        params,
        method=request.method,
        request_uri=_request_uri(),
        realm=DIGEST_REALM,
        secret=current_app.config["SECRET_KEY"],
        ha1_for=ha1_for,
        nonce_lifetime=current_app.config["DIGEST_NONCE_SECONDS"],
        remember_nc=_tolerant(tracker),
    )
    if result.ok:
        ratelimit.clear(login, request.remote_addr)
        _logged_in(users[login], via="digest")
        return users[login]
    g.auth_stale = result.stale
    if result.reason in ("wrong password", "unknown user"):
        ratelimit.record_failure(login, request.remote_addr)
        _refused(login, locked=False, via="digest")
    return None


def _logged_in(user: User, via: str) -> None:
    if record_phone_login(user, request.remote_addr, via=via):
        db.session.commit()


def _request_uri() -> str:
    """The Request-URI exactly as the client sent it, which the Digest response signs."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return raw
    query = request.query_string.decode("latin-1")
    return request.environ.get("SCRIPT_NAME", "") + request.path + (f"?{query}" if query else "")


def _tolerant(tracker):
    """Replay checks need Redis; without it, accept (a submission matters more)."""
    if tracker is None:
        return None

    def remember(nonce: str, nc: int, lifetime: float) -> bool:
        try:
            return tracker(nonce, nc, lifetime)
        except Exception:  # noqa: BLE001 - Redis down: degrade, never refuse a phone
            return True

    return remember


def _basic_user(header: str) -> User | None:
    """Basic sends the password itself: accepted only over https."""
    if not request.is_secure:
        return None
    try:
        login, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if ratelimit.is_locked(login, request.remote_addr):
        _refused(login, locked=True, via="basic")
        return None
    user = _find_active(login)
    if user is None or not user.check_password(password):
        ratelimit.record_failure(login, request.remote_addr)
        _refused(login, locked=False, via="basic")
        return None
    ratelimit.clear(login, request.remote_addr)
    _logged_in(user, via="basic")
    return user


def _add_headers(response):
    """Each header unless the view set it (the names it set are looked at once)."""
    wanted = list(SECURITY_HEADERS.items())
    if request.is_secure:
        wanted.append(("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY))
    if _answers_someone() and request.endpoint != "static":
        # A logged-in answer may show people's data (a page, a case's JSON, a submission's
        # XML or photo): not kept in any cache, a shared device's browser least of all.
        wanted.append(("Cache-Control", "no-store"))
    wanted += [("X-OpenRosa-Version", "1.0"), ("Date", http_date())]
    present = {name.lower() for name, _ in response.headers.items()}
    response.headers.extend([(n, v) for n, v in wanted if n.lower() not in present])
    return response


def _answers_someone() -> bool:
    return current_user() is not None or session.get("user_id") is not None


def current_user() -> User | None:
    return g.get("user")


def api_login_required(view):
    """401 in Central's JSON shape unless a valid bearer token or session was given."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            from server.errors import api_error

            return api_error(401.2, "Could not authenticate with the provided credentials.", 401)
        return view(*args, **kwargs)

    return wrapped


def login_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            return redirect(url_for("pages.login", next=request.full_path))
        return view(*args, **kwargs)

    return wrapped


def admin_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None or not user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
