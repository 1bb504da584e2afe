"""The case schema (HTCDS 2.0): one victim-centred case, built up by submissions.

A Person may have several Cases over the years; each Case has its victim profile, the
trafficking episodes, movement events, perpetrators, support plans, assistance given and
consent statements. More than one episode for a person means re-trafficking.

Every change is kept as a CaseVersion (who, when, which submission, what changed), for
audit and for sync. `uuid`s are minted where a record is created: on the phone (the ODK
entity id) for records made from a submission.
"""

from __future__ import annotations

import datetime as dt
import uuid as uuid_module

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    text,
    true,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.extensions import db

CASE_STATUSES = ("Active", "FollowUp", "Closed", "ClosedReferred")


def new_uuid() -> str:
    return str(uuid_module.uuid4())


class UuidMixin:
    uuid: Mapped[str] = mapped_column(
        String(36), unique=True, default=new_uuid, insert_sentinel=True
    )


class Person(UuidMixin, db.Model):
    """prs_: the person helped. Highly sensitive: never logged, only shown within scope."""

    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(255))
    middle_name: Mapped[str | None] = mapped_column(String(255))
    second_name: Mapped[str | None] = mapped_column(String(255))
    birthdate: Mapped[dt.date | None]
    #: From the birth date or an age estimate; for age bands and record-linkage blocking.
    birth_year: Mapped[int | None] = mapped_column(index=True)
    age_estimate: Mapped[int | None]
    gender: Mapped[str | None] = mapped_column(String(32), index=True)
    deceased: Mapped[bool | None]
    marital_status: Mapped[str | None] = mapped_column(String(32))
    number_of_children: Mapped[int | None]
    primary_language: Mapped[str | None] = mapped_column(String(3))
    secondary_language: Mapped[str | None] = mapped_column(String(3))
    highest_level_of_education: Mapped[str | None] = mapped_column(String(64))
    #: ISO 3166-1 alpha-3 codes; the first is the one routing uses as the source country.
    citizenship: Mapped[list] = mapped_column(JSON, default=list)
    identity_number: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    home_phone: Mapped[str | None] = mapped_column(String(64))
    mobile_phone: Mapped[str | None] = mapped_column(String(64))
    mailing_street: Mapped[str | None] = mapped_column(String(255))
    mailing_city: Mapped[str | None] = mapped_column(String(255))
    mailing_state: Mapped[str | None] = mapped_column(String(255))
    mailing_postal_code: Mapped[str | None] = mapped_column(String(32))
    mailing_country: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime | None] = mapped_column(onupdate=func.now())
    #: Its record-linkage encoding (sync.linkage_store) is missing or out of date: set for
    #: a new person and when a value linkage reads changes; encoded lazily, in bulk.
    needs_linkage: Mapped[bool] = mapped_column(default=True, server_default=true(), index=True)

    cases: Mapped[list[Case]] = relationship(back_populates="person", order_by="Case.id")
    episodes: Mapped[list[Episode]] = relationship(back_populates="person", order_by="Episode.id")


#: The Person attributes a linkage encoding is made of (sync.linkage_encoding.PersonValues).
LINKAGE_ATTRIBUTES = (
    "first_name",
    "middle_name",
    "second_name",
    "birthdate",
    "birth_year",
    "gender",
    "identity_number",
    "mobile_phone",
)


@event.listens_for(Person, "before_update")
def _linkage_out_of_date(_mapper, _connection, person: Person) -> None:
    """A changed name, date, gender, document or phone: encode the person again, later.
    (Bulk Core UPDATEs of these columns must set needs_linkage themselves.)"""
    state = sa_inspect(person)
    if any(state.attrs[name].history.has_changes() for name in LINKAGE_ATTRIBUTES):
        person.needs_linkage = True


class Case(UuidMixin, db.Model):
    """cas_: one case per person helped; `version` counts its changes."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(f"status IS NULL OR status IN {CASE_STATUSES!r}", name="status_known"),
        Index("ix_cases_project_status", "project_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    #: The mission (country office) that owns the case; one at a time.
    owner_mission: Mapped[str] = mapped_column(String(16), index=True)
    #: A human-readable reference shown to interviewers (never a name).
    reference: Mapped[str | None] = mapped_column(String(64))
    #: The ODK entity label phones show in the case list.
    label: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(32))
    reason_for_case_closure: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    closed_at: Mapped[dt.datetime | None]
    referring_organisation: Mapped[str | None] = mapped_column(String(255))
    incoming_referral_date: Mapped[dt.date | None]
    referring_primary_case_worker: Mapped[str | None] = mapped_column(String(255))
    reason_for_incoming_referral: Mapped[str | None] = mapped_column(String(64))
    incoming_referral_details: Mapped[str | None] = mapped_column(Text)
    referred_organisation: Mapped[str | None] = mapped_column(String(255))
    referred_primary_case_worker: Mapped[str | None] = mapped_column(String(255))
    reason_for_outgoing_referral: Mapped[str | None] = mapped_column(String(64))
    outgoing_referral_date: Mapped[dt.date | None]
    outgoing_referral_details: Mapped[str | None] = mapped_column(Text)
    last_comment: Mapped[str | None] = mapped_column(Text)
    follow_up_date: Mapped[dt.date | None]
    reintegration_status: Mapped[str | None] = mapped_column(String(64))
    retrafficking_risk: Mapped[str | None] = mapped_column(String(64))
    #: Number of changes applied; ODK's entity __version, and the base of update conflicts.
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime | None] = mapped_column(onupdate=func.now())

    person: Mapped[Person] = relationship(back_populates="cases")
    victim: Mapped[VictimProfile | None] = relationship(
        back_populates="case", cascade="all, delete-orphan"
    )
    episodes: Mapped[list[Episode]] = relationship(
        back_populates="case", order_by="Episode.id", cascade="all, delete-orphan"
    )
    movement_events: Mapped[list[MovementEvent]] = relationship(
        order_by="MovementEvent.id", cascade="all, delete-orphan"
    )
    perpetrators: Mapped[list[Perpetrator]] = relationship(
        order_by="Perpetrator.id", cascade="all, delete-orphan"
    )
    support_plans: Mapped[list[SupportPlan]] = relationship(
        order_by="SupportPlan.id", cascade="all, delete-orphan"
    )
    assistance: Mapped[list[Assistance]] = relationship(
        order_by="Assistance.id", cascade="all, delete-orphan"
    )
    consents: Mapped[list[Consent]] = relationship(
        order_by="Consent.id", cascade="all, delete-orphan"
    )
    versions: Mapped[list[CaseVersion]] = relationship(
        back_populates="case", order_by="CaseVersion.version", cascade="all, delete-orphan"
    )

    @property
    def consent(self) -> Consent | None:
        """The consent statement in force: the latest one."""
        return self.consents[-1] if self.consents else None


class VictimProfile(db.Model):
    """vic_: trafficking status and who decided it."""

    __tablename__ = "victim_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), unique=True)
    agreement_to_manage_personal_data: Mapped[bool | None]
    trafficking_status: Mapped[str | None] = mapped_column(String(64))
    status_decided_by: Mapped[str | None] = mapped_column(String(64))
    vulnerabilities: Mapped[list] = mapped_column(JSON, default=list)
    details_of_vulnerabilities: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="victim")


class ChildRecord(UuidMixin):
    """Columns every record hanging off a case has."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Episode(ChildRecord, db.Model):
    """A trafficking episode: how the person was recruited, controlled and exploited."""

    __tablename__ = "episodes"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    age_when_trafficked: Mapped[int | None]
    relationship_to_trafficker: Mapped[str | None] = mapped_column(String(64))
    methods_of_recruitment: Mapped[list] = mapped_column(JSON, default=list)
    recruitment_websites_and_apps: Mapped[list] = mapped_column(JSON, default=list)
    location_of_recruitment: Mapped[str | None] = mapped_column(String(255))
    methods_of_control: Mapped[list] = mapped_column(JSON, default=list)
    types_of_exploitation: Mapped[list] = mapped_column(JSON, default=list)
    forced_labour_industry: Mapped[str | None] = mapped_column(String(128))
    types_of_sex_exploitation: Mapped[list] = mapped_column(JSON, default=list)
    location_of_exploitation: Mapped[str | None] = mapped_column(String(255))
    exploitation_websites_and_apps: Mapped[list] = mapped_column(JSON, default=list)
    started_on: Mapped[dt.date | None]
    ended_on: Mapped[dt.date | None]
    duration_months: Mapped[int | None]

    case: Mapped[Case] = relationship(back_populates="episodes")
    person: Mapped[Person] = relationship(back_populates="episodes")


class MovementEvent(ChildRecord, db.Model):
    """hte_: a place and date of recruitment, transit or exploitation."""

    __tablename__ = "movement_events"
    __table_args__ = (
        CheckConstraint(
            "type IS NULL OR type IN ('Recruitment', 'Transit', 'Exploitation')",
            name="type_known",
        ),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    type: Mapped[str | None] = mapped_column(String(16))
    date: Mapped[dt.date | None]
    #: ISO 3166-1 alpha-3; routing uses the exploitation country as the destination.
    country: Mapped[str | None] = mapped_column(String(3), index=True)
    state: Mapped[str | None] = mapped_column(String(255))
    city: Mapped[str | None] = mapped_column(String(255))
    street: Mapped[str | None] = mapped_column(String(255))
    postal_code: Mapped[str | None] = mapped_column(String(32))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    description: Mapped[str | None] = mapped_column(Text)


class Perpetrator(ChildRecord, db.Model):
    """per_: a perpetrator's roles in the process."""

    __tablename__ = "perpetrators"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    roles: Mapped[list] = mapped_column(JSON, default=list)
    role_details: Mapped[str | None] = mapped_column(Text)
    gender: Mapped[str | None] = mapped_column(String(32))
    citizenship: Mapped[list] = mapped_column(JSON, default=list)
    organisation: Mapped[str | None] = mapped_column(String(255))


class SupportPlan(ChildRecord, db.Model):
    """spl_: a planned support, and when it ended."""

    __tablename__ = "support_plans"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    type: Mapped[str | None] = mapped_column(String(64))
    objectives: Mapped[str | None] = mapped_column(Text)
    action_plan: Mapped[str | None] = mapped_column(Text)
    planned_end_date: Mapped[dt.date | None]
    actual_end_date: Mapped[dt.date | None]


class Assistance(ChildRecord, db.Model):
    """Assistance given: when, what, and by which organisation."""

    __tablename__ = "assistance"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    date: Mapped[dt.date | None]
    types: Mapped[list] = mapped_column(JSON, default=list)
    provider_name: Mapped[str | None] = mapped_column(String(255))
    provider_type: Mapped[str | None] = mapped_column(String(64))


class Consent(ChildRecord, db.Model):
    """con_: one consent statement; the latest is in force. Scope decides what may travel."""

    __tablename__ = "consents"

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    given: Mapped[bool | None]
    #: May the case be shared with the linked missions (sync)?
    sharing: Mapped[bool | None]
    research: Mapped[bool | None]
    purposes: Mapped[list] = mapped_column(JSON, default=list)
    #: Mission codes the person agreed to share with; empty = every linked mission.
    recipient_missions: Mapped[list] = mapped_column(JSON, default=list)
    withdrawn: Mapped[bool] = mapped_column(default=False)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))


class CaseVersion(db.Model):
    """One change to a case: who, when, from which submission, and the fields it changed."""

    __tablename__ = "case_versions"
    __table_args__ = (
        UniqueConstraint("case_id", "version"),
        # A submission changes a case at most once: what makes jobs idempotent.
        Index(
            "uq_case_versions_submission",
            "case_id",
            "submission_id",
            unique=True,
            postgresql_where=text("submission_id IS NOT NULL"),
            sqlite_where=text("submission_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    version: Mapped[int]
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    #: The change received from a linked mission that made this version (instead of a
    #: submission); its origin is in sync_inbox_changes.
    sync_change_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    #: The phone's entity baseVersion for an update; below `version - 1` means offline edits.
    base_version: Mapped[int | None]
    submitter_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    submitter_app_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_users.id"))
    #: {"create": bool, "fields": {htcds_name: value}, "records": [{dataset, uuid, fields}]}
    changes: Mapped[dict] = mapped_column(JSON)
    #: Fields not applied because someone else changed them since the phone's base version.
    conflicts: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())

    case: Mapped[Case] = relationship(back_populates="versions")
