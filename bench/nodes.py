"""Missions as real deployments on loopback ports, for the multi-node tests and bench/routing.py.

A `Deployment` is one mission's instance folder, database, Redis database, Ed25519 key,
registry and linkage secret, and the Procfile's `web`, `worker` and `sync` processes, each
in its own process group (one process of each kind: the machines here have 2 shared cores).
How the schema and users are made is left to the caller: the tests use their factories,
the benchmark `casebridge setup`.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sync.linkage_secret import write_linkage_secret
from sync.registry import Registry, save_registry

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROCESSES = ("web", "worker", "sync")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def procfile_argv(name: str, port: int, one_each: bool = True) -> list[str]:
    """A Procfile line as honcho would run it; with `one_each`, one gunicorn worker and one
    RQ worker process (several missions share 2 cores here)."""
    argv = shlex.split(procfile()[name].replace("${PORT:-5000}", str(port)))
    for option in ("--workers", "--processes"):
        if option in argv and one_each:
            argv[argv.index(option) + 1] = "1"
    return argv


def write_key(path: Path, key: Ed25519PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


class Deployment:
    """One mission's deployment: its settings, files and Procfile processes."""

    def __init__(
        self,
        code: str,
        folder: Path,
        database_url: str,
        redis_url: str,
        extra_env: dict[str, str] | None = None,
        one_each: bool = True,
    ):
        self.code, self.folder = code, folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = Ed25519PrivateKey.generate()
        self.database_url, self.redis_url = database_url, redis_url
        self.extra_env = dict(extra_env or {})
        self.one_each = one_each
        self.processes: dict[str, subprocess.Popen] = {}
        (folder / "logs").mkdir(parents=True, exist_ok=True)

    def write_identity(self, registry: Registry, linkage_secret: bytes) -> None:
        """The registry, signing key and linkage secret its processes will read."""
        save_registry(registry, self.folder / "missions.json")
        write_key(self.folder / "mission_ed25519.pem", self.key)
        write_linkage_secret(linkage_secret, self.folder / "linkage.key")

    def settings(self) -> dict:
        return {
            "SQLALCHEMY_DATABASE_URI": self.database_url,
            "REDIS_URL": self.redis_url,
            "MISSION_CODE": self.code,
            "MISSIONS_FILE": str(self.folder / "missions.json"),
            "MISSION_KEY_FILE": str(self.folder / "mission_ed25519.pem"),
            "LINKAGE_KEY_FILE": str(self.folder / "linkage.key"),
            "ODK_VALIDATE": "off",
        }

    def env(self) -> dict:
        """Its settings as CASEBRIDGE_* variables; this checkout's code first on the path
        (a venv shared between worktrees has its editable install pointing at one only)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CASEBRIDGE_") and k not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update({f"CASEBRIDGE_{k}": str(v) for k, v in self.settings().items()})
        env.update(
            CASEBRIDGE_INSTANCE_PATH=str(self.folder / "instance"),
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        )
        env.update(self.extra_env)
        return env

    def start(self, *names: str) -> None:
        for name in names or PROCESSES:
            with (self.folder / "logs" / f"{name}.log").open("ab") as out:
                self.processes[name] = subprocess.Popen(
                    procfile_argv(name, self.port, self.one_each),
                    env=self.env(),
                    cwd=ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )

    def wait_until_serving(self, seconds: float = 60) -> None:
        def answers() -> bool:
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
            return False

        wait_until(answers, seconds, f"{self.code} to serve", self)

    def groups(self) -> dict[str, int]:
        """Process group ids of the running processes, named CODE/process."""
        return {f"{self.code}/{name}": p.pid for name, p in self.processes.items()}

    def stop(self, *names: str) -> None:
        """SIGTERM to each process (all at once: they shut down side by side), then wait."""
        stopping = [self.processes.pop(n) for n in names or tuple(self.processes)]
        for process in stopping:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in stopping:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {self.code} {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted((self.folder / "logs").glob("*.log"))
        )


def wait_until(condition: Callable[[], object], seconds: float, what: str, *nodes: Deployment):
    """Poll `condition` every 0.2 s until it is truthy (its value) or `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(n.logs() for n in nodes)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.2)
