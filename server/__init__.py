"""CaseBridge: the form server and case system for counter-trafficking field missions."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from config import default_sqlite_uri, load_config
from server.redis_local import default_data_dir, socket_url


def create_app(config: str | None = None, overrides: dict | None = None) -> Flask:
    """The application factory: one line per concern."""
    app = Flask(__name__, instance_path=os.environ.get("CASEBRIDGE_INSTANCE_PATH"))
    app.config.from_mapping(load_config(config, overrides))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = default_sqlite_uri(app.instance_path)
    app.config["MAX_CONTENT_LENGTH"] = max(
        app.config["MAX_CONTENT_LENGTH"],
        app.config["OPENROSA_MAX_SUBMISSION_BYTES"] + 1_000_000,  # multipart overhead
        app.config["MAX_FORM_UPLOAD_BYTES"] * 2,
    )
    if app.config["TRUST_PROXY"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    if not app.config["REDIS_URL"]:
        app.config["REDIS_URL"] = socket_url(default_data_dir(app.instance_path) / "redis.sock")

    from server import models  # noqa: F401 - every model registered before migrations look
    from server.extensions import csrf, database_session_settings, db, migrate

    db.init_app(app)
    with app.app_context():
        database_session_settings(db.engine, app.config["DATABASE_LOCK_TIMEOUT_MS"])
    migrate.init_app(app, db, directory=str(Path(__file__).parent.parent / "migrations"))
    csrf.init_app(app)

    from server import cache, errors, security
    from server.api import api
    from server.appusers.api import app_users_api  # noqa: F401 - registers routes on api
    from server.cases.api import cases_api  # noqa: F401 - registers routes on api
    from server.cli import register_commands
    from server.health import health
    from server.openrosa.views import openrosa
    from server.pages import pages
    from sync.views import sync_api

    security.init_app(app)
    cache.init_app(app)
    errors.init_app(app)
    app.register_blueprint(api)
    app.register_blueprint(openrosa)
    csrf.exempt(openrosa)  # phones post with Digest or a URL token, never with a cookie
    app.register_blueprint(pages)
    app.register_blueprint(health)
    app.register_blueprint(sync_api)
    csrf.exempt(sync_api)  # peers sign each batch with their mission key, never a cookie
    register_commands(app)
    return app
