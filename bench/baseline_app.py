"""The baseline for bench/submissions.py: a bare Flask app that stores the raw POST body.

It is what any Flask app would pay to accept a submission durably on the same stack:
gunicorn (same options as the Procfile), Flask/Werkzeug, SQLAlchemy Core, the same database
as CaseBridge with the same SQLite pragmas, one commit per request. No parsing, no auth,
no files on disk, no queue: CaseBridge's throughput divided by this one is the share of
the stack's capacity CaseBridge keeps.

    gunicorn <the Procfile's web: options> "bench.baseline_app:create_app()"

Database: CASEBRIDGE_DATABASE_URL, else DATABASE_URL (CaseBridge's precedence), else the
SQLite file CaseBridge itself would use: <CASEBRIDGE_INSTANCE_PATH or instance/>/casebridge.sqlite3.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from flask import Flask, Response, request
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    create_engine,
    event,
    insert,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from config import default_sqlite_uri
from server.extensions import sqlite_pragmas  # the very pragmas CaseBridge applies

PROJECT_ROOT = Path(__file__).resolve().parent.parent

metadata = MetaData()
bench_raw = Table(
    "bench_raw",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


def database_url() -> str:
    url = os.environ.get("CASEBRIDGE_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    instance = os.environ.get("CASEBRIDGE_INSTANCE_PATH") or PROJECT_ROOT / "instance"
    return default_sqlite_uri(instance)


def make_engine(url: str | None = None) -> Engine:
    engine = create_engine(url or database_url())
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    return engine


def create_schema(engine: Engine) -> None:
    try:
        metadata.create_all(engine, checkfirst=True)
    except DBAPIError:
        # Two gunicorn workers booting at once on PostgreSQL: the other one made it.
        with engine.connect() as connection:
            if not engine.dialect.has_table(connection, "bench_raw"):
                raise


def create_app() -> Flask:
    app = Flask(__name__)
    engine = make_engine()
    create_schema(engine)
    app.extensions["bench_engine"] = engine

    @app.route("/submission", methods=["HEAD", "POST"])
    def submission():
        if request.method == "HEAD":
            return Response(status=204)
        body = request.get_data(cache=False)
        with engine.begin() as connection:  # one transaction, committed per request
            connection.execute(
                insert(bench_raw).values(
                    body=body, created_at=datetime.now(UTC).replace(tzinfo=None)
                )
            )
        return Response(status=201)

    return app
