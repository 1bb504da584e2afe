"""The /v1 REST API blueprint; each area adds its routes in its own api module."""

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/v1")

from server.auth import api as _auth_api  # noqa: E402,F401 - registers routes
from server.forms import api as _forms_api  # noqa: E402,F401
from server.projects import api as _projects_api  # noqa: E402,F401
from server.submissions import api as _submissions_api  # noqa: E402,F401
