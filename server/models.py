"""Imports every model, so that metadata (and Alembic) sees the whole schema."""

from server.auth.models import ApiSession, User
from server.blobs.models import Blob
from server.forms.models import Form, FormAttachment, FormDef
from server.projects.models import Project, ProjectMember

__all__ = [
    "ApiSession",
    "Blob",
    "Form",
    "FormAttachment",
    "FormDef",
    "Project",
    "ProjectMember",
    "User",
]
