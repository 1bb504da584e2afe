"""Shared extension objects, bound to the app in create_app."""

from __future__ import annotations

from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from redis import Redis
from rq import Queue
from sqlalchemy import MetaData, event
from sqlalchemy.orm import DeclarativeBase

#: Stable constraint names, so Alembic migrations read the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True)  # batch mode: SQLite can't ALTER most things
csrf = CSRFProtect()

#: Queue names, in the order a worker serves them.
QUEUE_NAMES = ("submissions", "default")


def sqlite_pragmas(dbapi_connection, _record, lock_timeout_ms: int = 30_000) -> None:
    """SQLite as a server database: foreign keys on, WAL so readers never block the writer,
    a busy timeout instead of "database is locked", and full fsync (nothing accepted is lost)."""
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA foreign_keys=ON",
        "PRAGMA journal_mode=WAL",
        f"PRAGMA busy_timeout={int(lock_timeout_ms)}",
        "PRAGMA synchronous=FULL",
    ):
        cursor.execute(pragma)
    cursor.close()


def database_session_settings(engine, lock_timeout_ms: int) -> None:
    """Per-connection settings: SQLite pragmas, or PostgreSQL's lock_timeout. A bounded wait
    for a lock turns a stuck job into an error the queue retries, instead of a hung worker."""
    if engine.dialect.name == "sqlite":

        def on_connect(dbapi_connection, record):
            sqlite_pragmas(dbapi_connection, record, lock_timeout_ms)

    else:

        def on_connect(dbapi_connection, _record):
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
            dbapi_connection.commit()

    event.listen(engine, "connect", on_connect)


def redis_connection() -> Redis:
    """The app's Redis connection, made once per app."""
    conn = current_app.extensions.get("casebridge_redis")
    if conn is None:
        conn = Redis.from_url(current_app.config["REDIS_URL"])
        current_app.extensions["casebridge_redis"] = conn
    return conn


def queue(name: str = "default") -> Queue:
    return Queue(name, connection=redis_connection())
