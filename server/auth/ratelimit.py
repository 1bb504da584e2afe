"""Slow down password guessing: count failures per login and address in Redis.

When Redis is unreachable the limiter steps aside rather than locking everyone out.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

from flask import current_app
from redis.exceptions import RedisError

from server.extensions import redis_connection

log = logging.getLogger(__name__)


def _key(login: str, address: str | None) -> str:
    digest = hashlib.sha256(f"{login}|{address}".encode()).hexdigest()[:32]
    return f"casebridge:auth-failures:{digest}"  # no user name in Redis keys or logs


def is_locked(login: str, address: str | None) -> bool:
    try:
        count = redis_connection().get(_key(login, address))
    except (RedisError, OSError):
        return False
    return count is not None and int(count) >= current_app.config["LOGIN_MAX_FAILURES"]


def record_failure(login: str, address: str | None) -> None:
    try:
        pipe = redis_connection().pipeline()
        pipe.incr(_key(login, address))
        pipe.expire(_key(login, address), current_app.config["LOGIN_LOCKOUT_SECONDS"])
        pipe.execute()
    except (RedisError, OSError):
        log.warning("could not record a failed login: Redis unreachable")


def first_lockout_refusal(login: str, address: str | None) -> bool:
    """True for the first request refused by a lock, once per lockout period: what the audit
    trail keeps of a locked login, so that hammering it does not flood the trail."""
    seconds = current_app.config["LOGIN_LOCKOUT_SECONDS"]
    return once_per(f"{_key(login, address)}:locked-seen", seconds)


def once_per(key: str, seconds: int) -> bool:
    """True the first time `key` is seen within `seconds`. Redis unreachable: True (an extra
    audit event is better than a missing one)."""
    try:
        return bool(redis_connection().set(key, 1, nx=True, ex=seconds))
    except (RedisError, OSError):
        return True


def clear(login: str, address: str | None) -> None:
    with contextlib.suppress(RedisError, OSError):
        redis_connection().delete(_key(login, address))
