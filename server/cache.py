"""What phones ask for on every request (token, form, version), remembered per process.

An admin change must take effect at once (a revoked token gets 403 on its next request),
so every entry is stamped with a generation held in Redis, replaced after each commit that
touched app users, forms, versions or projects. The process that made the change sees it
on its next request; every other process within GENERATION_CHECK_SECONDS, the longest it
trusts the generation it last read (one Redis GET per process and interval, not one per
request: that GET was a tenth of a submission's time). Entries also expire after
TTL_SECONDS, for changes made behind the app's back. Without Redis nothing is remembered:
every lookup goes to the database, as before.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from itertools import chain
from typing import TypeVar

from flask import Flask, current_app, g, has_app_context
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from server.extensions import redis_connection

GENERATION_KEY = "casebridge:admin-generation"
TTL_SECONDS = 3.0
GENERATION_CHECK_SECONDS = 0.5
MAX_ENTRIES = 5000  # hostile form ids or tokens cannot grow it further
_CHANGED = "casebridge_admin_changed"

T = TypeVar("T")


def init_app(app: Flask) -> None:
    from server.appusers.models import AppUser, AppUserForm
    from server.forms.models import Form, FormDef
    from server.projects.models import Project

    app.extensions["casebridge_cache"] = {}
    app.extensions["casebridge_generation"] = _GenerationSeen()
    app.extensions["casebridge_cache_watched"] = (AppUser, AppUserForm, Form, FormDef, Project)
    for name, listener in (
        ("after_flush", _note_flush),
        ("do_orm_execute", _note_bulk),
        ("after_commit", _bump_if_changed),
        ("after_rollback", _forget_changes),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def remembered(key: tuple, load: Callable[[], T]) -> T:
    """`load()`, or what it returned for `key` in this generation and the last seconds."""
    generation = _generation()
    if generation is None:
        return load()
    entries: dict = current_app.extensions["casebridge_cache"]
    entry = entries.get(key)
    now = time.monotonic()
    if entry is not None and entry[0] == generation and entry[1] > now:
        return entry[2]
    value = load()
    if len(entries) >= MAX_ENTRIES:
        entries.clear()
    entries[key] = (generation, now + TTL_SECONDS, value)
    return value


class _GenerationSeen:
    """The generation this process last read from Redis, and when (monotonic seconds)."""

    def __init__(self) -> None:
        self.value: bytes | None = None
        self.read_at = 0.0

    def fresh(self, now: float) -> bytes | None:
        if self.value is not None and now - self.read_at < GENERATION_CHECK_SECONDS:
            return self.value
        return None

    def saw(self, value: bytes | None, now: float) -> None:
        self.value, self.read_at = value, now


def _generation() -> bytes | None:
    """This request's generation; None if Redis is down."""
    if "casebridge_generation" not in g:
        seen: _GenerationSeen = current_app.extensions["casebridge_generation"]
        now = time.monotonic()
        value = seen.fresh(now)
        if value is None:
            value = _read_generation()
            seen.saw(value, now)
        g.casebridge_generation = value
    return g.casebridge_generation


def _read_generation() -> bytes | None:
    try:
        connection = redis_connection()
        value = connection.get(GENERATION_KEY)
        if value is None:  # a new or emptied Redis: start a generation nobody holds
            connection.set(GENERATION_KEY, uuid.uuid4().hex, nx=True)
            value = connection.get(GENERATION_KEY)
    except (RedisError, OSError):
        value = None
    return value


def bump() -> None:
    """Invalidate every process's entries (a new random value: never one seen before)."""
    generation: bytes | None = uuid.uuid4().hex.encode()
    try:
        redis_connection().set(GENERATION_KEY, generation)
    except (RedisError, OSError):  # others' entries expire within the TTL
        generation = None  # and this process remembers nothing until Redis is back
    if has_app_context():  # this process knows at once; the others within the interval
        current_app.extensions["casebridge_generation"].saw(generation, time.monotonic())


def _watched() -> tuple:
    if not has_app_context():
        return ()
    return current_app.extensions.get("casebridge_cache_watched", ())


def _note_flush(session: Session, _flush_context) -> None:
    watched = _watched()
    if watched and any(
        isinstance(o, watched) for o in chain(session.new, session.dirty, session.deleted)
    ):
        session.info[_CHANGED] = True


def _note_bulk(state) -> None:
    watched = _watched()
    writes = state.is_update or state.is_delete or state.is_insert
    if watched and writes and any(m.class_ in watched for m in state.all_mappers):
        state.session.info[_CHANGED] = True


def _bump_if_changed(session: Session) -> None:
    if session.info.pop(_CHANGED, False) and has_app_context():
        bump()
        g.pop("casebridge_generation", None)


def _forget_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)
