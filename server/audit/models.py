"""One row per audited action. Rows are only ever added: nothing updates or deletes them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from server.extensions import db


class AuditEvent(db.Model):
    """Who (a user or an app user, by id), when, which action, on which object, from where.

    No foreign keys: the trail must outlive, and never block, anything it mentions.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("action <> ''", name="action_not_empty"),
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_object", "object_type", "object_id"),
        Index("ix_audit_events_user", "user_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    #: The user who acted; for a failed login, the account the login named, if any.
    user_id: Mapped[int | None]
    #: The app user (phone) that acted, for actions over OpenRosa.
    app_user_id: Mapped[int | None]
    #: A dotted verb from audit.operations.ACTIONS, e.g. "case.view".
    action: Mapped[str] = mapped_column(String(40), index=True)
    object_type: Mapped[str | None] = mapped_column(String(32))
    #: The object's id or uuid, as text.
    object_id: Mapped[str | None] = mapped_column(String(64))
    #: The mission the object belongs to (a case's owner), else this node's mission.
    mission: Mapped[str | None] = mapped_column(String(16))
    #: The client's address as the server saw it (after ProxyFix when TRUST_PROXY).
    address: Mapped[str | None] = mapped_column(String(45))
    #: Non-personal context: filter names and codes, counts, a failure's reason.
    details: Mapped[dict] = mapped_column(JSON, default=dict)
