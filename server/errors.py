"""One place that turns domain exceptions into responses (JSON under /v1, HTML elsewhere)."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from server.appusers.operations import AppUserNotFound
from server.auth.operations import AuthError, TooManyAttempts, UserExists
from server.cases.queries import CaseNotFound
from server.extensions import db
from server.forms.operations import AttachmentNotExpected, FormConflict, FormNotFound
from server.forms.problems import FormRejected
from server.openrosa.responses import message as openrosa_message
from server.projects.operations import Forbidden, ProjectNotFound
from server.submissions.reading import SubmissionNotFound

NOT_FOUND = "Could not find the resource you were looking for."


def api_error(code: float, message: str, status: int, **details):
    """Central's error shape: {"code": 404.1, "message": "..."} plus any details."""
    body = {"code": code, "message": message}
    body.update(details)
    response = jsonify(body)
    response.status_code = status
    return response


def _is_openrosa() -> bool:
    return request.blueprint == "openrosa" or request.path.endswith(
        ("/formList", "/submission", "/manifest")
    )


def _is_api() -> bool:
    return request.path.startswith("/v1/")


def _respond(code: float, message: str, status: int, **details):
    if _is_api():
        return api_error(code, message, status, **details)
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(FormRejected)
    def form_rejected(error: FormRejected):
        problems = [p.as_dict() for p in error.problems]
        summary = "; ".join(str(p) for p in error.problems)
        code = 413.1 if error.status == 413 else 400.15
        return _respond(code, summary, error.status, problems=problems)

    @app.errorhandler(FormConflict)
    def form_conflict(error: FormConflict):
        return _respond(409.3, str(error), 409)

    @app.errorhandler(UserExists)
    def user_exists(error: UserExists):
        return _respond(409.3, str(error), 409)

    @app.errorhandler(AppUserNotFound)
    @app.errorhandler(CaseNotFound)
    @app.errorhandler(SubmissionNotFound)
    @app.errorhandler(FormNotFound)
    @app.errorhandler(ProjectNotFound)
    @app.errorhandler(AttachmentNotExpected)
    def not_found(error: Exception):
        message = str(error) if isinstance(error, AttachmentNotExpected) else NOT_FOUND
        return _respond(404.1, message, 404)

    @app.errorhandler(ValidationError)
    def invalid_query(error: ValidationError):
        """A marshmallow schema refused a request's parameters or body."""
        messages = error.messages if isinstance(error.messages, dict) else {"": error.messages}
        problems = "; ".join(
            f"{name}: {' '.join(map(str, m if isinstance(m, list) else [m]))}"
            for name, m in sorted(messages.items())
        )
        return _respond(400.8, f"Invalid parameter {problems}", 400, details=messages)

    @app.errorhandler(Forbidden)
    def forbidden(error: Forbidden):
        return _respond(403.1, str(error), 403)

    @app.errorhandler(AuthError)
    def auth_error(error: AuthError):
        if isinstance(error, TooManyAttempts):
            return _respond(429.1, str(error), 429)
        return _respond(401.2, "Could not authenticate with the provided credentials.", 401)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge):
        if _is_openrosa():
            return openrosa_message("This submission is larger than the server accepts.", 413)
        return _respond(413.1, "The upload is larger than this server accepts.", 413)

    @app.errorhandler(DBAPIError)
    def database_unavailable(error: DBAPIError):
        """A database outage: 503 so phones keep the form and retry; nothing half-saved."""
        db.session.rollback()
        app.logger.error("database error: %s", type(error.orig).__name__)
        message = "The database is unavailable; try again shortly."
        if _is_openrosa():
            response = openrosa_message(
                "The server cannot save submissions right now. Your form is safe on the phone; "
                "it will be sent again later.",
                503,
            )
        elif _is_api():
            response = api_error(503.1, message, 503)
        else:
            return render_template("error.html", status=503, message=message), 503
        response.headers["Retry-After"] = "60"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if _is_openrosa():
            return openrosa_message(
                NOT_FOUND if error.code == 404 else (error.description or error.name),
                error.code or 500,
            )
        messages = {404: NOT_FOUND, 403: "You may not do that.", 405: "Method not allowed."}
        message = messages.get(error.code, error.description or error.name)
        return _respond(float(f"{error.code}.1"), message, error.code or 500)
