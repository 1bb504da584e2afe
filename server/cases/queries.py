"""Reading cases: who may see which, filters, pages. No HTTP and no writes.

A case is sensitive: users see the cases of projects they are members of (admins: of every
project), collectors see none here (they work over OpenRosa only), and a case out of reach
looks exactly like one that does not exist.

Mission scope, for everyone, admins too: a deployment serves one mission (MISSION_CODE), so
"own mission" is read as the cases this node's mission owns, plus the cases a peer mission
shares with it: the latest change received for the case, from its owner, is an upsert, not a
tombstone; or nothing came from its owner yet and this mission transferred the case to it
(the copy the old owner keeps: its follow-ups go to the new owner). A case whose sharing was
withdrawn is out of reach here. Users have no mission of their own: the node's mission is
theirs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from flask import current_app
from sqlalchemy import ColumnElement, Select, String, and_, cast, func, or_, select
from sqlalchemy.orm import selectinload

from server.appusers.models import AppUser
from server.auth.models import Role, User
from server.cases.models import Case, CaseVersion, Episode, Person
from server.extensions import db
from server.projects.models import ProjectMember
from server.projects.operations import Forbidden
from server.submissions.models import Submission
from sync.models import CASE_CHANGE_KINDS, SyncInboxChange, SyncTransfer

READER_ROLES = (Role.ADMIN, Role.DESIGNER, Role.VIEWER)
#: Age bands reports use: name -> (youngest, oldest) in whole years; None is open-ended.
AGE_BANDS: dict[str, tuple[int, int | None]] = {
    "0-17": (0, 17),
    "18-25": (18, 25),
    "26-35": (26, 35),
    "36-50": (36, 50),
    "51+": (51, None),
}
MAX_LIMIT = 500


class CaseNotFound(Exception):
    """No such case, or one the user may not see: the two must look the same."""


@dataclass(frozen=True)
class CaseFilters:
    """What the case list is narrowed by; coded values are already canonical (HTCDS names)."""

    status: str | None = None
    gender: str | None = None
    age_band: str | None = None
    citizenship: str | None = None  #: ISO 3166-1 alpha-3
    exploitation: str | None = None  #: an HTCDS vic_TypeOfExploitation value name
    mission: str | None = None
    retrafficked: bool | None = None
    project_id: int | None = None
    q: str | None = None  #: a prefix of the case reference


def filters_summary(filters: CaseFilters) -> dict:
    """The filters for the audit trail: codes as given, but only whether a reference was
    searched for (free text could be anything a person typed, a name included)."""
    summary = {key: value for key, value in asdict(filters).items() if value is not None}
    if "q" in summary:
        summary["q"] = "(given)"
    return summary


@dataclass(frozen=True)
class Page:
    limit: int = 50
    offset: int = 0


def require_reader(user: User) -> None:
    if user.role not in READER_ROLES:
        raise Forbidden("Collectors send cases from their phones; they cannot read cases here.")


def list_cases(
    user: User, filters: CaseFilters, page: Page, *, today: dt.date | None = None
) -> tuple[list[Case], int]:
    """One page of the cases the user may see, newest first, and how many match in all."""
    require_reader(user)
    query = _filtered(select(Case).join(Case.person).where(_visible(user)), filters, today)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.options(
            selectinload(Case.person).selectinload(Person.episodes), selectinload(Case.episodes)
        )
        .order_by(Case.opened_at.desc(), Case.id.desc())
        .limit(min(page.limit, MAX_LIMIT))
        .offset(page.offset)
    )
    return list(rows), total or 0


def get_case(user: User, uuid: str) -> Case:
    """The case with every record hanging off it, if the user may see it."""
    require_reader(user)
    case = db.session.scalar(
        select(Case)
        .where(Case.uuid == uuid, _visible(user))
        .options(
            selectinload(Case.person).selectinload(Person.episodes),
            selectinload(Case.victim),
            selectinload(Case.episodes),
            selectinload(Case.movement_events),
            selectinload(Case.perpetrators),
            selectinload(Case.support_plans),
            selectinload(Case.assistance),
            selectinload(Case.consents),
            selectinload(Case.versions),
        )
    )
    if case is None:
        raise CaseNotFound(uuid)
    return case


def visible_missions(user: User) -> list[str]:
    """The missions owning cases the user may see (for the mission filter), own one first."""
    require_reader(user)
    owners = db.session.scalars(
        select(Case.owner_mission).where(_visible(user)).distinct().order_by(Case.owner_mission)
    )
    return list(dict.fromkeys([own_mission(), *owners]))


def is_retrafficked(case: Case) -> bool:
    """More than one trafficking episode for the person, over all their cases."""
    return len(case.person.episodes) > 1


def exploitation_types(case: Case) -> list[str]:
    """The types of exploitation of every episode of the case, each once, in order."""
    return list(dict.fromkeys(t for e in case.episodes for t in e.types_of_exploitation))


def age_band(birth_year: int | None, today: dt.date | None = None) -> str | None:
    if birth_year is None:
        return None
    age = (today or dt.date.today()).year - birth_year
    for name, (youngest, oldest) in AGE_BANDS.items():
        if age >= youngest and (oldest is None or age <= oldest):
            return name
    return None


def version_source(version: CaseVersion) -> dict:
    """The submission and submitter of a change, for the case history."""
    submission = (
        db.session.get(Submission, version.submission_id) if version.submission_id else None
    )
    submitter = None
    if version.submitter_user_id is not None:
        user = db.session.get(User, version.submitter_user_id)
        submitter = {"type": "user", "id": user.id, "displayName": user.name}
    elif version.submitter_app_user_id is not None:
        app_user = db.session.get(AppUser, version.submitter_app_user_id)
        submitter = {"type": "field_key", "id": app_user.id, "displayName": app_user.display_name}
    return {"instanceId": submission.instance_id if submission else None, "submitter": submitter}


def own_mission() -> str:
    """The mission this deployment serves."""
    return current_app.config["MISSION_CODE"]


def in_mission_scope(mission: str) -> ColumnElement[bool]:
    """Cases `mission` owns, or that their owner shares with it (see the module docstring)."""
    latest_received = (
        select(SyncInboxChange.kind)
        .where(
            SyncInboxChange.case_uuid == Case.uuid,
            SyncInboxChange.origin_mission == Case.owner_mission,
            SyncInboxChange.kind.in_(CASE_CHANGE_KINDS),  # not a transfer's messages
        )
        .order_by(SyncInboxChange.version.desc(), SyncInboxChange.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    handed_over_by_us = (
        select(SyncTransfer.id)
        .where(
            SyncTransfer.case_uuid == Case.uuid,
            SyncTransfer.from_mission == mission,
            SyncTransfer.to_mission == Case.owner_mission,
            SyncTransfer.kind == "transfer",
            SyncTransfer.state == "accepted",
        )
        .exists()
    )
    return or_(
        Case.owner_mission == mission,
        latest_received == "upsert",
        and_(latest_received.is_(None), handed_over_by_us),
    )


def _visible(user: User) -> ColumnElement[bool]:
    """The mission scope, and for non-admins the same rule as `projects.operations.is_member`,
    as a clause for many cases at once."""
    scope = in_mission_scope(own_mission())
    if user.is_admin:
        return scope
    member_of = select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)
    return and_(scope, Case.project_id.in_(member_of))


def _filtered(query: Select, filters: CaseFilters, today: dt.date | None) -> Select:
    if filters.status is not None:
        query = query.where(Case.status == filters.status)
    if filters.gender is not None:
        query = query.where(Person.gender == filters.gender)
    if filters.age_band is not None:
        year = (today or dt.date.today()).year
        youngest, oldest = AGE_BANDS[filters.age_band]
        query = query.where(Person.birth_year <= year - youngest)
        if oldest is not None:
            query = query.where(Person.birth_year >= year - oldest)
    if filters.citizenship is not None:
        query = query.where(_json_list_has(Person.citizenship, filters.citizenship))
    if filters.exploitation is not None:
        query = query.where(
            select(Episode.id)
            .where(
                Episode.case_id == Case.id,
                _json_list_has(Episode.types_of_exploitation, filters.exploitation),
            )
            .exists()
        )
    if filters.mission is not None:
        query = query.where(Case.owner_mission == filters.mission)
    if filters.retrafficked is not None:
        episodes = (
            select(func.count(Episode.id))
            .where(Episode.person_id == Case.person_id)
            .scalar_subquery()
        )
        query = query.where(episodes > 1 if filters.retrafficked else episodes <= 1)
    if filters.project_id is not None:
        query = query.where(Case.project_id == filters.project_id)
    if filters.q:
        query = query.where(Case.reference.istartswith(filters.q, autoescape=True))
    return query


def _json_list_has(column, value: str) -> ColumnElement[bool]:
    """A JSON list of codes holds `value`: the quoted code in its text, on SQLite and PostgreSQL.

    Codes are checked before they get here (letters, digits, underscores), so the quoted value
    matches one whole item and nothing else; no per-dialect JSON functions are needed.
    """
    return cast(column, String).contains(f'"{value}"', autoescape=True)
