"""POST /sync/v1/inbox: where peers deliver signed batches. HTTP only; see sync/inbox.py.

Answers: 200 with an ack per change; 400 malformed or stale; 401 unsigned or a signature
that does not verify; 403 unknown sender, a batch for another mission, or changes the
sender did not make; 409 replayed (or a concurrent delivery: send again); 411 no
Content-Length; 413 too large.
A refusal is {"error": code, "message": text} and nothing of the batch is applied.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from server.extensions import db
from sync.inbox import receive_batch
from sync.keys import KeyFileError, load_mission_key
from sync.registry import load_registry
from sync.signing import BatchRefused, MalformedBatch, sign_receipt

log = logging.getLogger(__name__)

sync_api = Blueprint("sync", __name__, url_prefix="/sync/v1")


def _refuse_constant(name: str):
    raise MalformedBatch(f"{name} is not JSON a batch may hold.")


def _refusal(code: str, message: str, status: int):
    response = jsonify(error=code, message=message)
    response.status_code = status
    return response


@sync_api.post("/inbox")
def inbox():
    limit = current_app.config["SYNC_MAX_BATCH_BYTES"]
    if request.content_length is None:
        return _refusal("length_required", "Send the batch with a Content-Length.", 411)
    if request.content_length > limit:
        return _refusal("too_large", f"A batch may be {limit} bytes at most.", 413)
    try:
        envelope = json.loads(request.get_data(cache=False), parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        raise MalformedBatch("The body is not JSON.") from None
    try:
        key = load_mission_key()  # before applying: a receipt this mission cannot sign is none
    except KeyFileError:
        log.error("sync batch not taken: this mission has no key (casebridge missions init)")
        return _refusal("no_key", "This mission cannot sign its receipt yet; send later.", 503)
    acks = receive_batch(
        envelope,
        registry=load_registry(),
        own_mission=current_app.config["MISSION_CODE"],
        now=dt.datetime.now(dt.UTC),
        max_skew=dt.timedelta(seconds=current_app.config["SYNC_MAX_CLOCK_SKEW_SECONDS"]),
        max_changes=current_app.config["SYNC_MAX_BATCH_CHANGES"],
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _refusal("conflict", "A concurrent delivery got there first; send again.", 409)
    log.info("sync batch accepted: %d change(s)", len(acks))
    return jsonify(
        sign_receipt(
            current_app.config["MISSION_CODE"],
            envelope["batch"]["nonce"],
            [{"change_id": a.change_id, "status": a.status} for a in acks],
            key,
        )
    )


@sync_api.errorhandler(BatchRefused)
def refused(error: BatchRefused):
    db.session.rollback()
    log.warning("sync batch refused: %s", error.code)
    return _refusal(error.code, error.message, error.status)


@sync_api.errorhandler(HTTPException)
def http_error(error: HTTPException):
    return _refusal("http", error.description or error.name, error.code or 500)
