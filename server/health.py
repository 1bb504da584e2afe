"""Is the service whole? Database, Redis and the workers, for /healthz and operators."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify
from redis.exceptions import RedisError
from rq import Worker
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from server.extensions import QUEUE_NAMES, db, queue, redis_connection

health = Blueprint("health", __name__)

HEARTBEAT_KEY = "casebridge:worker-heartbeat"


def record_heartbeat() -> float:
    """An RQ job: proves a worker can take jobs from the queue and reach Redis."""
    now = time.time()
    redis_connection().set(HEARTBEAT_KEY, now)
    return now


def check_health() -> dict:
    report: dict = {"database": "ok", "redis": "ok", "queues": {}, "workers": 0}
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        report["database"] = f"unreachable: {type(error).__name__}"
    try:
        connection = redis_connection()
        connection.ping()
        report["queues"] = {name: queue(name).count for name in QUEUE_NAMES}
        report["workers"] = len(Worker.all(connection=connection))
        beat = connection.get(HEARTBEAT_KEY)
        report["last_worker_heartbeat"] = float(beat) if beat else None
    except (RedisError, OSError) as error:
        report["redis"] = f"unreachable: {type(error).__name__}"
    report["ok"] = report["database"] == "ok" and report["redis"] == "ok"
    return report


@health.get("/healthz")
def healthz():
    report = check_health()
    return jsonify(report), 200 if report["ok"] else 503
