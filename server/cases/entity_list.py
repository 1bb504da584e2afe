"""The case list as phones get it: an ODK entity list (CSV media), and its integrity check.

A follow-up form names `cases.csv` (select_one_from_file), as it would name a dataset in ODK
Central; the server serves it from the cases table, for the form's project: this mission's
cases and the linked missions' cases held here (so that a follow-up here can update them;
sync sends it back to the owner), but not a copy its owner withdrew. It holds the least
that lets an interviewer pick the right person: the case's id, its label (the reference,
never a name) and its version (for update conflicts).
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import or_, select

from server.cases.fields import Record
from server.cases.models import Case
from server.extensions import db
from sync.models import SyncAppliedVersion

#: Attachment names that are entity lists, and the dataset behind each.
ENTITY_LISTS = {f"{Record.CASES.value}.csv": Record.CASES.value}


def dataset_for(attachment_name: str) -> str | None:
    return ENTITY_LISTS.get(attachment_name)


@dataclass(frozen=True)
class EntityListFile:
    content: bytes
    md5: str


def _visible_cases(project_id: int):
    withdrawn = (
        select(SyncAppliedVersion.case_uuid)
        .where(
            SyncAppliedVersion.case_uuid == Case.uuid,
            SyncAppliedVersion.origin_mission == Case.owner_mission,
            SyncAppliedVersion.kind == "tombstone",
        )
        .exists()
    )
    return select(Case).where(
        Case.project_id == project_id,
        or_(Case.owner_mission == current_app.config["MISSION_CODE"], ~withdrawn),
    )


def case_list(project_id: int) -> EntityListFile:
    """`name,label,__version` rows, as ODK clients read an entity list."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "label", "__version"])
    rows = db.session.execute(
        _visible_cases(project_id)
        .with_only_columns(Case.uuid, Case.label, Case.reference, Case.version)
        .order_by(Case.id)
    )
    for uuid, label, reference, version in rows:
        # The reference, whatever label the form computed: a label could hold a name.
        writer.writerow([uuid, reference or label or uuid[:8], version])
    content = buffer.getvalue().encode("utf-8")
    return EntityListFile(content, hashlib.md5(content).hexdigest())  # noqa: S324 - OpenRosa


def deleted_states(project_id: int, ids: list[str]) -> list[tuple[str, bool]]:
    """For each id a phone holds: is it gone from its list (deleted, moved, or never here)?"""
    wanted = [i for i in dict.fromkeys(ids) if i][:10_000]
    present = set(
        db.session.scalars(
            _visible_cases(project_id).with_only_columns(Case.uuid).where(Case.uuid.in_(wanted))
        )
    )
    return [(i, i not in present) for i in wanted]
