"""Signed batches: canonical JSON, signed with the sending mission's Ed25519 key.

A batch travels as the envelope `{"batch": {...}, "signature": "<base64>"}`. The signature
covers `SIGNING_CONTEXT + canonical_json(batch)`; the receiver re-encodes the batch it
parsed, so what it verifies is exactly what it applies. The inbox answers with a receipt
(`sign_receipt`: its mission code, the batch's nonce and the acks, signed under another
context): the sender takes acks only from its peer's receipt for that very batch.

Canonical JSON (the exact rule): `json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False, allow_nan=False)` encoded as UTF-8. So: object keys sorted by code
point, no whitespace, strings as raw UTF-8 with only `"`, `\\`, and control characters
escaped, integers in decimal, no NaN or infinities. Batches carry no floats of their own;
a float inside a payload (a coordinate) is written as Python's shortest round-trip repr.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import secrets
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PROTOCOL = "casebridge-sync/1"
#: Prefixed to what is signed, so a signature made here is valid for nothing else.
SIGNING_CONTEXT = b"casebridge-sync/1 batch\n"
#: The same for an inbox's receipt (its acks): a batch signature is never a receipt's.
RECEIPT_CONTEXT = b"casebridge-sync/1 receipt\n"


class BatchRefused(Exception):
    """A batch the inbox will not apply; `status` and `code` become the HTTP answer."""

    status = 400
    code = "malformed"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class MalformedBatch(BatchRefused):
    pass


class UnsignedBatch(BatchRefused):
    status, code = 401, "unsigned"


class BadSignature(BatchRefused):
    status, code = 401, "bad_signature"


class UnknownSender(BatchRefused):
    status, code = 403, "unknown_sender"


class NotForThisMission(BatchRefused):
    status, code = 403, "wrong_recipient"


class StaleBatch(BatchRefused):
    status, code = 400, "stale"


class ReplayedBatch(BatchRefused):
    status, code = 409, "replayed"


def canonical_json(value: object) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def timestamp(moment: dt.datetime) -> str:
    """UTC, to the second, with a Z: `2026-11-28T07:30:00Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except (TypeError, ValueError):
        raise MalformedBatch("sent_at: give UTC as YYYY-MM-DDTHH:MM:SSZ.") from None


def new_batch(
    sender: str, recipient: str, changes: list[dict], now: dt.datetime | None = None
) -> dict:
    """A batch with a fresh nonce and timestamp; sign it with `sign_batch`."""
    return {
        "protocol": PROTOCOL,
        "sender": sender,
        "recipient": recipient,
        "sent_at": timestamp(now or dt.datetime.now(dt.UTC)),
        "nonce": secrets.token_hex(16),
        "changes": changes,
    }


def sign_batch(batch: dict, private_key: Ed25519PrivateKey) -> dict:
    """The envelope to POST: the batch and its signature."""
    signature = private_key.sign(SIGNING_CONTEXT + canonical_json(batch))
    return {"batch": batch, "signature": base64.b64encode(signature).decode("ascii")}


def verify_batch(
    envelope: object, public_key_for: Callable[[str], Ed25519PublicKey | None]
) -> dict:
    """The batch, once its signature checks out against its sender's registered key.

    Checks only who signed it; freshness, replay and content are the inbox's to check.
    Raises MalformedBatch, UnsignedBatch, UnknownSender or BadSignature.
    """
    if not isinstance(envelope, dict) or not isinstance(envelope.get("batch"), dict):
        raise MalformedBatch('Send {"batch": {...}, "signature": "..."}.')
    batch = envelope["batch"]
    signature = envelope.get("signature")
    if not signature:
        raise UnsignedBatch("The batch is not signed.")
    sender = batch.get("sender")
    if not isinstance(sender, str) or not sender:
        raise MalformedBatch("The batch names no sender.")
    public_key = public_key_for(sender)
    if public_key is None:
        raise UnknownSender(f"Mission {sender[:16]!r} is not a registered peer of this mission.")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
        message = SIGNING_CONTEXT + canonical_json(batch)
    except (TypeError, binascii.Error, ValueError):
        raise BadSignature("The signature does not verify.") from None
    try:
        public_key.verify(raw_signature, message)
    except InvalidSignature:
        raise BadSignature("The signature does not verify.") from None
    return batch


class BadReceipt(Exception):
    """An inbox's answer that is not its signed receipt for the batch just sent."""


def sign_receipt(mission: str, nonce: str, acks: list[dict], key: Ed25519PrivateKey) -> dict:
    """The inbox's answer: its acks for the batch with `nonce`, signed by this mission.

    Signed so that no one between the missions can make a sender believe a change was
    delivered (it would never be sent again); bound to the batch's nonce so that an old
    receipt cannot answer a new batch."""
    receipt = {"mission": mission, "nonce": nonce, "acks": acks}
    signature = key.sign(RECEIPT_CONTEXT + canonical_json(receipt))
    return {**receipt, "signature": base64.b64encode(signature).decode("ascii")}


def verify_receipt(
    answer: object, mission: str, nonce: str, public_key: Ed25519PublicKey
) -> list[dict]:
    """The acks of `answer`, once it is `mission`'s signed receipt for the batch `nonce`.
    Raises BadReceipt."""
    if not isinstance(answer, dict) or not isinstance(answer.get("acks"), list):
        raise BadReceipt("the answer has no acks")
    receipt = {
        "mission": answer.get("mission"),
        "nonce": answer.get("nonce"),
        "acks": answer["acks"],
    }
    if receipt["mission"] != mission or receipt["nonce"] != nonce:
        raise BadReceipt(f"the answer is not {mission}'s receipt for this batch")
    try:
        signature = base64.b64decode(answer.get("signature") or "", validate=True)
        public_key.verify(signature, RECEIPT_CONTEXT + canonical_json(receipt))
    except (TypeError, binascii.Error, ValueError, InvalidSignature):
        raise BadReceipt(f"the receipt is not signed by {mission}") from None
    return answer["acks"]
