"""Imports every model, so that metadata (and Alembic) sees the whole schema."""

from server.appusers.models import AppUser, AppUserForm
from server.audit.models import AuditEvent
from server.auth.models import ApiSession, User
from server.blobs.models import Blob
from server.cases.models import (
    Assistance,
    Case,
    CaseVersion,
    Consent,
    Episode,
    MovementEvent,
    Perpetrator,
    Person,
    SupportPlan,
    VictimProfile,
)
from server.forms.models import Form, FormAttachment, FormDef
from server.projects.models import Project, ProjectKey, ProjectMember
from server.submissions.models import Submission, SubmissionAttachment
from sync.models import SyncAppliedVersion, SyncInboxChange, SyncOutbox, SyncSeenNonce

__all__ = [
    "ApiSession",
    "AppUser",
    "AppUserForm",
    "Assistance",
    "AuditEvent",
    "Blob",
    "Case",
    "CaseVersion",
    "Consent",
    "Episode",
    "MovementEvent",
    "Perpetrator",
    "Person",
    "SupportPlan",
    "VictimProfile",
    "Form",
    "FormAttachment",
    "FormDef",
    "Project",
    "ProjectKey",
    "ProjectMember",
    "Submission",
    "SubmissionAttachment",
    "SyncAppliedVersion",
    "SyncInboxChange",
    "SyncOutbox",
    "SyncSeenNonce",
    "User",
]
