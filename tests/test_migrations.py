"""The models and the migrations describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from server.extensions import db


def test_migrations_match_the_models(app_context):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == [], "run `casebridge db migrate -m ...` and commit the migration"


def test_after_migrating_sqlite_still_checks_foreign_keys(app_context):
    """The migrations turn them off for batch table copies, on a pooled connection (the suite
    ran with them off until session 6)."""
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return
    assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
