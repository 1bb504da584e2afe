"""Who is asking: a bearer token (API) or a login session (pages)."""

from __future__ import annotations

from functools import wraps

from flask import Flask, abort, g, redirect, request, session, url_for

from server.auth.models import User
from server.auth.operations import user_for_token
from server.extensions import db

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
}


def init_app(app: Flask) -> None:
    app.before_request(_load_user)
    app.after_request(_add_headers)


def _load_user() -> None:
    g.user = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        g.user = user_for_token(header.removeprefix("Bearer ").strip())
        g.auth_failed = g.user is None
        return
    user_id = session.get("user_id")
    if user_id is not None:
        user = db.session.get(User, user_id)
        g.user = user if user is not None and user.active else None


def _add_headers(response):
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


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
