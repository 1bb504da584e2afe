"""Canonical JSON and Ed25519 signatures on batches: plain functions, no app."""

from __future__ import annotations

import copy

import pytest

from sync.signing import (
    BadSignature,
    MalformedBatch,
    UnknownSender,
    UnsignedBatch,
    canonical_json,
    new_batch,
    sign_batch,
    verify_batch,
)
from tests.sync_support import new_key


def test_canonical_json_sorts_keys_drops_whitespace_and_keeps_utf8():
    value = {"b": [1, True, None], "a": {"z": 'Sôkha "ទ"', "y": 2.5}}
    assert canonical_json(value) == '{"a":{"y":2.5,"z":"Sôkha \\"ទ\\""},"b":[1,true,null]}'.encode()


def test_canonical_json_refuses_nan():
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def batch(**changes):
    return new_batch("THA", "KHM", [{"change_id": "c1", "payload": {"x": 1}, **changes}])


def test_a_signed_batch_verifies_whatever_the_key_order():
    key = new_key()
    envelope = sign_batch(batch(), key)
    reordered = {
        "signature": envelope["signature"],
        "batch": dict(reversed(list(envelope["batch"].items()))),
    }
    assert verify_batch(reordered, {"THA": key.public_key()}.get) == envelope["batch"]


def test_any_change_breaks_the_signature():
    key = new_key()
    envelope = sign_batch(batch(), key)
    tampered = copy.deepcopy(envelope)
    tampered["batch"]["changes"][0]["payload"]["x"] = 2
    with pytest.raises(BadSignature):
        verify_batch(tampered, {"THA": key.public_key()}.get)


def test_a_signature_by_another_key_fails():
    envelope = sign_batch(batch(), new_key())
    with pytest.raises(BadSignature):
        verify_batch(envelope, {"THA": new_key().public_key()}.get)


def test_unsigned_unknown_and_shapeless_batches_are_refused():
    key = new_key()
    envelope = sign_batch(batch(), key)
    with pytest.raises(UnsignedBatch):
        verify_batch({"batch": envelope["batch"]}, {"THA": key.public_key()}.get)
    with pytest.raises(UnknownSender):
        verify_batch(envelope, {"MMR": key.public_key()}.get)
    with pytest.raises(MalformedBatch):
        verify_batch([envelope], {"THA": key.public_key()}.get)
    with pytest.raises(BadSignature):
        verify_batch({**envelope, "signature": "not base64!"}, {"THA": key.public_key()}.get)
