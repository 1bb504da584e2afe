"""Attachments kept durably: small ones in the database with their submission, large ones in
files; both read back byte-identical, each body kept once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

import tests.test_openrosa_submissions as receiving
from server.blobs.models import Blob
from server.extensions import db
from server.storage import IN_DATABASE, FileStorage, TooLarge, storage
from tests.factories import multipart

phone = receiving.phone  # the app-user phone of the receiving tests (a fixture)
submission_xml, _submissions = receiving.submission_xml, receiving._submissions

SMALL = b"\x89PNG signature " * 100  # 1.6 KB
INLINE_MAX = 256 * 1024


def stored_files(app) -> list[Path]:
    root = Path(app.instance_path) / "storage"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def blob_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Blob))


def test_a_small_attachment_is_kept_in_the_database_with_its_submission(phone, app):
    files_before = stored_files(app)
    response = phone(multipart(submission_xml(), {"p.jpg": SMALL, "s.png": SMALL + b"2"}))
    assert response.status_code == 201
    (submission,) = _submissions(app)
    photo = next(a for a in submission.attachments if a.name == "p.jpg")
    assert photo.blob_key == f"{IN_DATABASE}{photo.sha256}"
    assert stored_files(app) == files_before, "no file written, nothing to fsync"
    with app.app_context():
        assert storage().read_bytes(photo.blob_key) == SMALL
        assert storage().open(photo.blob_key).read() == SMALL
        assert storage().exists(photo.blob_key)


def test_a_large_attachment_streams_to_a_file(phone, app):
    large = bytes(range(256)) * (INLINE_MAX // 256 + 1)  # just over the limit
    with app.app_context():
        blobs_before = blob_count()
    response = phone(multipart(submission_xml(), {"p.jpg": large}))
    assert response.status_code == 201
    (submission,) = _submissions(app)
    photo = next(a for a in submission.attachments if a.name == "p.jpg")
    assert not photo.blob_key.startswith(IN_DATABASE)
    with app.app_context():
        assert storage().read_bytes(photo.blob_key) == large
        assert blob_count() == blobs_before


def test_the_same_body_twice_is_kept_once(phone, app):
    with app.app_context():
        blobs_before = blob_count()
    for n in (1, 2):
        xml = submission_xml(instance=f"uuid:000{n}")
        assert phone(multipart(xml, {"p.jpg": SMALL})).status_code == 201
    keys = {a.blob_key for s in _submissions(app) for a in s.attachments if a.blob_key}
    assert len(keys) == 1
    with app.app_context():
        assert blob_count() == blobs_before + 1


@pytest.mark.parametrize("size", [INLINE_MAX, INLINE_MAX + 1, 3 * INLINE_MAX + 7])
def test_storage_keeps_every_byte_either_side_of_the_limit(app_context, tmp_path, size):
    body = bytes((i * 7) % 251 for i in range(size))
    stored = FileStorage(tmp_path, INLINE_MAX).save_stream(_Trickle(body))
    db.session.commit()
    assert stored.key.startswith(IN_DATABASE) == (size <= INLINE_MAX)
    assert stored.size == size
    assert FileStorage(tmp_path, INLINE_MAX).read_bytes(stored.key) == body


@pytest.mark.parametrize("inline_max", [0, INLINE_MAX])
def test_too_large_keeps_nothing(app_context, tmp_path, inline_max):
    with pytest.raises(TooLarge):
        FileStorage(tmp_path, inline_max).save_stream(io.BytesIO(b"x" * 5000), max_bytes=4000)
    db.session.commit()
    assert blob_count() == 0
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_database_key_is_never_a_path(tmp_path):
    with pytest.raises(ValueError):
        FileStorage(tmp_path)._path(f"{IN_DATABASE}../../etc/passwd")


class _Trickle(io.RawIOBase):
    """A stream that returns fewer bytes than asked, as a socket may."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, 1000) if size and size > 0 else size)
