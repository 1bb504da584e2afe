"""The models and the migrations describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import select

from server import create_app
from server.extensions import db
from sync.models import SyncOutbox


def test_migrations_match_the_models(app_context):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], "run `casebridge db migrate -m ...` and commit the migration"


def test_0013_keeps_only_the_names_of_what_acknowledged_changes_sent(tmp_path, redis_url):
    app = create_app(
        "testing",
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'old.sqlite3'}",
            "REDIS_URL": redis_url,
        },
    )
    sent = {
        "case": {"owner_mission": "THA", "fields": {"prs_FirstName": "Sokha"}},
        "records": [{"dataset": "movement_events", "uuid": "u1", "fields": {"hte_Country": "KHM"}}],
        "consent": {"purposes": []},
    }
    with app.app_context():
        upgrade(revision="0012")
        for number, state in enumerate(("acked", "pending", "dead")):
            db.session.add(
                SyncOutbox(
                    change_id=f"00000000-0000-0000-0000-00000000000{number}",
                    case_uuid="00000000-0000-0000-0000-00000000000a",
                    recipient_mission="KHM",
                    origin_mission="THA",
                    version=number + 1,
                    kind="upsert",
                    payload=sent,
                    state=state,
                    attempts=0,
                )
            )
        db.session.commit()
        upgrade(revision="0013")
        db.session.expire_all()
        payloads = [r.payload for r in db.session.scalars(select(SyncOutbox).order_by("id"))]
        db.session.remove()
        db.engine.dispose()
    assert payloads[0] == {
        "sent": {
            "fields": ["prs_FirstName"],
            "records": [{"dataset": "movement_events", "fields": ["hte_Country"]}],
            "parts": ["consent"],
        }
    }
    assert payloads[1:] == [sent, sent], "what is still to send keeps its values"


def test_after_migrating_sqlite_still_checks_foreign_keys(app_context):
    """The migrations turn them off for batch table copies, on a pooled connection (the suite
    ran with them off until session 6)."""
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return
    assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
