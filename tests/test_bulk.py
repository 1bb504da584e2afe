"""server.bulk: many rows in one go (COPY on PostgreSQL, executemany elsewhere) read back
exactly as the ORM would have written them."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from server.bulk import insert_rows
from server.cases.models import Person, new_uuid
from server.extensions import db

TABLE = Person.__table__
COLUMNS = [
    TABLE.c.uuid,
    TABLE.c.first_name,
    TABLE.c.birthdate,
    TABLE.c.deceased,
    TABLE.c.citizenship,
]


def person_row(**values) -> dict:
    return {
        "uuid": new_uuid(),
        "first_name": None,
        "birthdate": None,
        "deceased": None,
        "citizenship": [],
        **values,
    }


def test_ids_come_back_in_the_order_of_the_rows(app_context):
    rows = [person_row(first_name=f"P{i}") for i in range(5)]
    ids = insert_rows(db.session, TABLE, COLUMNS, rows, ids=True)
    db.session.commit()
    assert len(set(ids)) == 5
    by_id = {p.id: p for p in db.session.scalars(select(Person))}
    assert [by_id[i].first_name for i in ids] == [f"P{i}" for i in range(5)]
    assert [by_id[i].uuid for i in ids] == [r["uuid"] for r in rows]


def test_values_round_trip_as_the_orm_writes_them(app_context):
    awkward = "Tab\there, new\nline, back\\slash, quote \" and 'ñ' 中文"
    rows = [
        person_row(
            first_name=awkward,
            birthdate=dt.date(1990, 3, 14),
            deceased=False,
            citizenship=["KHM", "THA"],
        ),
        person_row(),  # None everywhere, an empty JSON list
    ]
    assert insert_rows(db.session, TABLE, COLUMNS, rows, ids=False) is None
    db.session.commit()
    first, second = db.session.scalars(select(Person).order_by(Person.id))
    assert first.first_name == awkward
    assert first.birthdate == dt.date(1990, 3, 14)
    assert first.deceased is False
    assert first.citizenship == ["KHM", "THA"]
    assert first.created_at is not None  # columns not named keep their server default
    assert (second.first_name, second.birthdate, second.deceased) == (None, None, None)
    assert second.citizenship == []


def test_later_orm_inserts_take_fresh_ids(app_context):
    """Ids drawn from the sequence by COPY's caller are not handed out again."""
    ids = insert_rows(db.session, TABLE, COLUMNS, [person_row(), person_row()], ids=True)
    later = Person(uuid=new_uuid(), citizenship=[])
    db.session.add(later)
    db.session.commit()
    assert later.id not in ids


def test_no_rows_is_nothing_to_do(app_context):
    assert insert_rows(db.session, TABLE, COLUMNS, [], ids=True) == []
    assert insert_rows(db.session, TABLE, COLUMNS, [], ids=False) is None


def test_a_lock_timeout_is_sqlalchemys_operational_error(app_context):
    """So that the batch job retries it whole, as any other database error (the COPY path
    talks to the driver directly)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("COPY is PostgreSQL's; SQLite takes the executemany path")
    locker = db.engine.connect()
    locker.begin()
    locker.execute(text("LOCK TABLE persons IN EXCLUSIVE MODE"))
    try:
        db.session.execute(text("SET LOCAL lock_timeout = '200ms'"))
        with pytest.raises(OperationalError):
            insert_rows(db.session, TABLE, COLUMNS, [person_row()], ids=False)
        db.session.rollback()
    finally:
        locker.rollback()
        locker.close()
