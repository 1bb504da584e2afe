from __future__ import annotations

import secrets

from flask import current_app, request

from server.api import api
from server.auth.operations import (
    AuthError,
    authenticate,
    close_api_session,
    open_api_session,
    record_failed_login,
    record_login,
)
from server.errors import api_error
from server.extensions import csrf, db
from server.schemas import SessionSchema, UserSchema
from server.security import api_login_required, current_user


@api.post("/sessions")
@csrf.exempt
def create_session():
    """Log in with {"email", "password"} for a bearer token, as in ODK Central."""
    body = request.get_json(silent=True) or {}
    login, password = body.get("email"), body.get("password")
    if not isinstance(login, str) or not isinstance(password, str):
        return api_error(400.3, "Provide an email (or user name) and a password.", 400)
    try:
        user = authenticate(login, password, request.remote_addr)
    except AuthError as failure:
        record_failed_login(login, request.remote_addr, failure, via="api")
        db.session.commit()
        raise  # 401 or 429 (server.errors)
    token, session = open_api_session(user, current_app.config["API_SESSION_SECONDS"])
    record_login(user, request.remote_addr, via="api")
    db.session.commit()
    return SessionSchema().dump(
        {"token": token, "csrf": secrets.token_urlsafe(32), "session": session}
    )


@api.delete("/sessions/<token>")
@csrf.exempt
@api_login_required
def delete_session(token: str):
    if token == "current":  # noqa: S105 - Central's alias for the caller's own session
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not close_api_session(token):
        return api_error(404.1, "Could not find the resource you were looking for.", 404)
    db.session.commit()
    return {"success": True}


@api.get("/users/current")
@api_login_required
def current():
    return UserSchema().dump(current_user())
