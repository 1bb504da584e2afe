"""Configuration classes; environment variables override them (see `load_config`).

Every setting may be given as an environment variable with the `CASEBRIDGE_` prefix
(`CASEBRIDGE_SECRET_KEY`). The usual unprefixed names DATABASE_URL, REDIS_URL and
SECRET_KEY are honoured too, since hosting platforms set those.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

DEFAULT_SECRET_KEY = "dev-only-insecure-secret"  # noqa: S105 - the sentinel production refuses


class DefaultConfig:
    """Embedded defaults for a laptop or a field server: SQLite under instance/."""

    SECRET_KEY = DEFAULT_SECRET_KEY
    #: Empty means "sqlite:///<instance>/casebridge.sqlite3", filled in by create_app.
    SQLALCHEMY_DATABASE_URI = ""
    #: hide_parameters: database errors (logged, kept by RQ) never carry the values.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True, "hide_parameters": True}
    #: Empty means "start a local redis-server under instance/" (see server.redis_local).
    REDIS_URL = ""
    #: Run ODK Validate (java) on every form: "auto" runs it when java is on PATH.
    ODK_VALIDATE = "auto"
    #: Largest form upload (bytes) and largest uncompressed .xlsx (zip bomb cap).
    MAX_FORM_UPLOAD_BYTES = 20 * 1024 * 1024
    MAX_XLSX_UNCOMPRESSED_BYTES = 60 * 1024 * 1024
    MAX_CONTENT_LENGTH = 101_000_000  # the submission limit plus multipart overhead
    #: Lifetime of a bearer token from POST /v1/sessions, in seconds (Central: 24 h).
    API_SESSION_SECONDS = 24 * 3600
    DEFAULT_PROJECT_NAME = "Default project"
    #: Failed password attempts per login and address before a lockout, and its length.
    LOGIN_MAX_FAILURES = 10
    LOGIN_LOCKOUT_SECONDS = 15 * 60
    #: OpenRosa: largest submission POST advertised to phones (X-OpenRosa-Accept-Content-Length).
    OPENROSA_MAX_SUBMISSION_BYTES = 100_000_000
    #: Attachments up to this size are kept in the database (in the submission's own
    #: transaction); larger ones in files under instance/storage. 0: always files.
    STORAGE_INLINE_MAX_BYTES = 256 * 1024
    #: Seconds a Digest nonce stays fresh; older ones get stale=true and a new challenge.
    DIGEST_NONCE_SECONDS = 300
    #: Trust X-Forwarded-* from one proxy (for https detection behind nginx).
    TRUST_PROXY = False
    #: The mission (country office) this deployment serves; it owns the cases made here.
    MISSION_CODE = "LOCAL"
    #: The mission registry (JSON, see sync/registry.py); empty means config/missions.json.
    MISSIONS_FILE = ""
    #: This mission's Ed25519 private key (PEM, mode 0600); empty: instance/mission_ed25519.pem.
    MISSION_KEY_FILE = ""
    #: The record-linkage secret shared by linked missions (base64, mode 0600, see
    #: sync/linkage_secret.py); empty: instance/linkage.key. No file: linkage is off.
    LINKAGE_KEY_FILE = ""
    #: How far a batch's timestamp may be from this server's clock, either way (seconds).
    SYNC_MAX_CLOCK_SKEW_SECONDS = 300
    #: Largest signed batch the inbox reads (bytes), and most changes in one batch.
    SYNC_MAX_BATCH_BYTES = 10_000_000
    SYNC_MAX_BATCH_CHANGES = 500
    #: Delivery: changes per batch, HTTP timeout, then retries with exponential backoff
    #: (base * 2**attempts, capped) until SYNC_MAX_ATTEMPTS, after which a change is 'dead'.
    SYNC_BATCH_SIZE = 100
    SYNC_HTTP_TIMEOUT_SECONDS = 30
    SYNC_RETRY_BASE_SECONDS = 30
    SYNC_RETRY_MAX_SECONDS = 6 * 3600
    SYNC_MAX_ATTEMPTS = 10
    #: How often the sync process (`casebridge sync run`) looks for due deliveries.
    SYNC_POLL_SECONDS = 2.0
    #: Queue a peer's delivery as soon as a commit gives it changes (else only by the poll).
    SYNC_DELIVER_ON_COMMIT = True
    #: Longest wait for a database lock (SQLite busy timeout, PostgreSQL lock_timeout).
    DATABASE_LOCK_TIMEOUT_MS = 30_000
    #: Seconds between retries of a failed normalization job; then it stays 'failed'.
    JOB_RETRY_INTERVALS = [10, 60, 300]
    #: Submissions a normalization job takes at once, in one transaction.
    NORMALIZE_BATCH_SIZE = 100
    #: How long a batch job woken by arrivals waits for more before it claims (ms). Fewer,
    #: fuller batches: half the worker's CPU per submission than at 50 ms, and fewer write
    #: transactions holding SQLite's lock while phones wait (bench/README.md, session 6).
    NORMALIZE_GATHER_MS = 250
    #: Wake the batch job from a thread of the web process after the commit, not in the
    #: request (the phone's 201 does not wait for Redis); tests wake in the request.
    WAKE_IN_BACKGROUND = True
    #: How long that thread waits, once woken, for more commits to share its wake (ms).
    WAKE_GATHER_MS = 20
    #: Niceness of `casebridge worker` (0: as the web). On a shared machine, phones'
    #: requests come first in a burst and normalization catches up after: the queue is
    #: what lets it wait.
    WORKER_NICE = 10
    #: How often the open queue page asks for fresh numbers.
    QUEUE_PAGE_POLL_SECONDS = 5
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    WTF_CSRF_TIME_LIMIT = None


class TestingConfig(DefaultConfig):
    TESTING = True
    SECRET_KEY = "testing-secret"  # noqa: S105
    WTF_CSRF_ENABLED = False
    WAKE_IN_BACKGROUND = False
    WORKER_NICE = 0  # `casebridge worker` invoked in the test process must not slow it


class ProductionConfig(DefaultConfig):
    SESSION_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"


CONFIGS = {
    "default": DefaultConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}

#: Unprefixed environment variables honoured as well as CASEBRIDGE_*.
PLAIN_ENV_NAMES = {
    "DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "REDIS_URL": "REDIS_URL",
    "SECRET_KEY": "SECRET_KEY",
}


class ConfigError(RuntimeError):
    """The configuration would be unsafe or unusable."""


def _parse(value: str):
    """Read JSON where it parses (numbers, booleans), else keep the string."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def load_config(name: str | None = None, overrides: dict | None = None) -> dict:
    """Return the settings of config class `name` with the environment applied.

    `name` defaults to $CASEBRIDGE_CONFIG, then "default".
    """
    name = name or os.environ.get("CASEBRIDGE_CONFIG", "default")
    try:
        cls = CONFIGS[name]
    except KeyError:
        raise ConfigError(f"Unknown config {name!r}; choose one of {sorted(CONFIGS)}") from None
    settings = {key: getattr(cls, key) for key in dir(cls) if key.isupper()}
    settings["CONFIG_NAME"] = name
    for env_name, key in PLAIN_ENV_NAMES.items():
        if os.environ.get(env_name):
            settings[key] = os.environ[env_name]
    for env_name, value in os.environ.items():
        if env_name.startswith("CASEBRIDGE_") and env_name != "CASEBRIDGE_CONFIG":
            key = env_name.removeprefix("CASEBRIDGE_")
            if key == "DATABASE_URL":
                key = "SQLALCHEMY_DATABASE_URI"
            settings[key] = _parse(value)
    settings.update(overrides or {})
    if settings["CONFIG_NAME"] == "production" and settings["SECRET_KEY"] in (
        DEFAULT_SECRET_KEY,
        "",
        None,
    ):
        raise ConfigError(
            "Refusing to start in production with the default SECRET_KEY: "
            "set SECRET_KEY (or CASEBRIDGE_SECRET_KEY) to a long random value."
        )
    return settings


def default_sqlite_uri(instance_path: str | Path) -> str:
    return f"sqlite:///{Path(instance_path) / 'casebridge.sqlite3'}"
