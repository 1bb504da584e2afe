"""`casebridge start` (what `make run` runs) from nothing: real processes, real ports."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from server.redis_local import is_up, socket_url
from tests.conftest import DATABASE_KIND

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(
    DATABASE_KIND != "sqlite",
    reason="`make run` uses the embedded SQLite default; run once, in the SQLite pass",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(**extra: str) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CASEBRIDGE_") and k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")
    }
    env.update(extra)
    return env


def _wait_for(url: str, deadline: float) -> int:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                return response.status
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer in time")


def _json(url: str, data: dict | None = None, token: str | None = None):
    request = urllib.request.Request(url, data=json.dumps(data).encode() if data else None)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def test_start_serves_login_with_the_questionnaires_published(tmp_path):
    port = _free_port()
    log = tmp_path / "start.log"
    instance = tmp_path / "instance"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "casebridge"), "start"],
            env=_clean_env(CASEBRIDGE_INSTANCE_PATH=str(instance), PORT=str(port)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        assert _wait_for(f"{base}/login", time.monotonic() + 90) == 200
        output = log.read_text()
        password = re.search(r"Password \(shown once\): (\S+)", output).group(1)
        assert f"http://127.0.0.1:{port}/" in output
        token = _json(f"{base}/v1/sessions", {"email": "admin", "password": password})["token"]
        forms = _json(f"{base}/v1/projects/1/forms", token=token)
        assert {f["xmlFormId"] for f in forms} == {
            "cb_screening",
            "cb_assistance",
            "cb_reintegration",
        }
        assert all(f["state"] == "open" and f["publishedAt"] for f in forms)
        health = _json(f"{base}/healthz")
        assert health["ok"] and health["workers"] >= 1
        deadline = time.monotonic() + 30
        while "queuing due deliveries" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "queuing due deliveries" in log.read_text(), "the Procfile's sync process runs"
        assert (instance / "casebridge.sqlite3").exists()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    redis_url = socket_url(instance / "redis" / "redis.sock")
    deadline = time.monotonic() + 10
    while is_up(redis_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not is_up(redis_url), "the local redis-server outlived `casebridge start`"


def test_flask_command_reaches_the_same_commands(tmp_path):
    env = _clean_env(CASEBRIDGE_INSTANCE_PATH=str(tmp_path))
    via_flask = subprocess.run(
        [str(BIN / "flask"), "--app", "server", "forms", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    via_casebridge = subprocess.run(
        [str(BIN / "casebridge"), "forms", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "publish" in via_flask.stdout and "list" in via_flask.stdout
    assert via_flask.stdout.split("Options:")[1] == via_casebridge.stdout.split("Options:")[1]
