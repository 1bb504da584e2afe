"""The sync process (`casebridge sync run`, the Procfile's `sync:` line): delivery without
a human. Every SYNC_POLL_SECONDS it queues one delivery job per peer with changes due; the
RQ workers send them (sync.delivery), several peers at once, each with its backoff.

Why a poller as well as the hook after a normalization's commit (sync.delivery.
wake_deliveries, for speed): the outbox is the truth, so one query finds everything due,
whatever wrote it (a normalization, a received change relayed, an admin's retry, a
backoff that expired) and whether Redis was up at that moment or not.
"""

from __future__ import annotations

import logging
import signal
import threading

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from server.extensions import db
from sync.delivery import enqueue_due_deliveries

log = logging.getLogger(__name__)


def tick() -> list[str]:
    """Queue the due deliveries once; the peers queued. Survives Redis or the database
    being away for a moment (the next tick tries again)."""
    try:
        return enqueue_due_deliveries()
    except (RedisError, OSError, SQLAlchemyError) as error:
        log.warning("sync: could not queue deliveries (%s); trying again", type(error).__name__)
        return []
    finally:
        db.session.remove()


def run(every: float, stop: threading.Event | None = None) -> None:
    """Tick every `every` seconds until `stop` is set (SIGTERM and SIGINT set it)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    log.info("sync: queuing due deliveries every %s s", every)
    while not stop.is_set():
        tick()
        stop.wait(every)
    log.info("sync: stopped")
