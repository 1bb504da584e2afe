"""Who may use the OpenRosa endpoints, and the challenge ODK Collect expects."""

from __future__ import annotations

from functools import wraps

from flask import current_app, g

from server.auth.models import DIGEST_REALM
from server.openrosa import digest, responses
from server.security import current_user

#: Roles that may fill forms from a phone (designers test their own forms).
COLLECTING_ROLES = ("admin", "collector", "designer")


def unauthorized():
    """401 with a Digest challenge: Collect sends credentials only after this."""
    if g.get("auth_locked"):
        response = responses.message(
            "Too many wrong passwords. Wait 15 minutes, then try again.", 429
        )
        response.headers["Retry-After"] = str(current_app.config["LOGIN_LOCKOUT_SECONDS"])
        return response
    response = responses.message("Please log in with your CaseBridge user name and password.", 401)
    response.headers["WWW-Authenticate"] = digest.challenge(
        DIGEST_REALM, current_app.config["SECRET_KEY"], stale=bool(g.get("auth_stale"))
    )
    return response


def phone_auth_required(view):
    """Any logged-in user (bearer, session, Digest, https Basic); else the Digest challenge."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            return unauthorized()
        return view(*args, **kwargs)

    return wrapped


def collector_required(view):
    @wraps(view)
    def wrapped(*args, **kwargs):
        user = current_user()
        if user is None:
            return unauthorized()
        if user.role not in COLLECTING_ROLES:
            return responses.message(
                "Your user may not fill forms. Ask an administrator for a collector account.", 403
            )
        return view(*args, **kwargs)

    return wrapped
